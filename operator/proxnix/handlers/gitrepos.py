"""kopf wiring of GitRepo: reconcile on change (a spec edit, the webhook's `proxnix.io/revision` and
`proxnix.io/requested-at` annotations, a `proxnix.io/confirm-prune`), poll on a timer at `spec.interval`, orphan or
delete the ProxmoxVMs on delete.

The handlers only translate: body → `GitRepoRef` (spec validated by `proxnix.api.validation`), then the reconcile's
`Outcome` → `apply_outcome` (status, Events, kopf's retry or stall).

Triggers and coalescing: kopf runs one change handler per object at a time and, when the object changed meanwhile,
runs it again once on the newest state; the reconciler's per-GitRepo lock makes the timer wait its turn (it skips
a tick while a reconcile runs). Every reconcile fetches the followed ref's head as it is then, so a push during a
fetch, evaluation or build is applied by the next run, and a burst of pushes costs at most one more run: the
intermediate commits are skipped, never queued. The webhook's revision is a trigger, not what is deployed.
"""

from __future__ import annotations

from typing import Any

import kopf

from proxnix.api.gitrepo import INFO, GitRepoDeletionPolicy, GitRepoSpec, GitRepoStatus
from proxnix.api.meta import ANNOTATION_REQUESTED_AT, GROUP, VERSION
from proxnix.api.validation import InvalidSpec, validate_spec
from proxnix.handlers.bodies import generation, object_ref
from proxnix.handlers.context import OperatorConfig, OperatorContext
from proxnix.handlers.outcomes import apply_outcome, progress
from proxnix.reconcile.gitrepo import GitRepoRef, invalid_spec
from proxnix.sources.flake.plan import ANNOTATION_CONFIRM_PRUNE

PLURAL = INFO.plural


def _status(body: kopf.Body) -> GitRepoStatus:
    return GitRepoStatus.model_validate(dict(body.status))


def _ref(body: kopf.Body) -> GitRepoRef:
    """The object as the reconcile sees it; `InvalidSpec` if its spec does not validate."""
    annotations = body.metadata.annotations
    return GitRepoRef(
        namespace=body.metadata.namespace or "",
        name=body.metadata.name or "",
        uid=body.metadata.uid or "",
        generation=generation(body),
        spec=validate_spec(GitRepoSpec, body.spec),
        status=_status(body),
        requested_at=annotations.get(ANNOTATION_REQUESTED_AT, ""),
        confirm_prune=annotations.get(ANNOTATION_CONFIRM_PRUNE, ""),
    )


async def _reconcile(
    body: kopf.Body, ctx: OperatorContext, attempt: int | None, *, when_due: bool = False
) -> None:
    obj = object_ref(INFO, body)
    try:
        ref = _ref(body)
    except InvalidSpec as exc:
        outcome = invalid_spec(_status(body), generation(body), f"invalid spec: {exc}")
    else:
        if ref.spec.suspend:
            return
        outcome = await ctx.gitrepos.reconcile(ref, progress=progress(ctx.kube, obj), when_due=when_due)
    await apply_outcome(ctx.kube, obj, body.status, outcome, attempt=attempt)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Add the GitRepo handlers to `registry`."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    async def gitrepo_changed(body: kopf.Body, memo: Any, retry: int, **_: Any) -> None:
        """Fetch the followed ref's head and apply it (unless suspended)."""
        await _reconcile(body, memo.ctx, retry)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=config.gitrepo_tick, id="poll", registry=registry)
    async def gitrepo_poll(body: kopf.Body, memo: Any, **_: Any) -> None:
        """Poll at spec.interval (sooner after a problem that may clear, or while its VMs are not Ready yet)."""
        ctx: OperatorContext = memo.ctx
        uid = body.metadata.uid or ""
        if body.metadata.get("deletionTimestamp") or ctx.gitrepos.busy(uid) or not ctx.gitrepos.due(uid):
            return
        try:
            _ref(body)
        except InvalidSpec:
            return  # the change handler reported it; nothing to poll until the spec changes
        await _reconcile(body, ctx, None, when_due=True)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="orphan-or-delete", registry=registry)
    async def gitrepo_deleted(body: kopf.Body, memo: Any, retry: int, **_: Any) -> None:
        """Orphan (default) or delete the ProxmoxVMs, then let the GitRepo go."""
        ctx: OperatorContext = memo.ctx
        obj = object_ref(INFO, body)
        try:
            ref = _ref(body)
        except InvalidSpec:
            # The API server validates the schema, so this is rare; the safe choice is the default: orphan.
            ref = GitRepoRef(
                obj.namespace,
                obj.name,
                obj.uid,
                generation(body),
                GitRepoSpec.model_construct(url="", deletion_policy=GitRepoDeletionPolicy.ORPHAN),
                _status(body),
            )
        outcome = await ctx.gitrepos.delete(ref)
        await apply_outcome(ctx.kube, obj, body.status, outcome, attempt=retry)
        if outcome.done:
            ctx.gitrepos.forget(ref.uid)
