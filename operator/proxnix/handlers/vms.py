"""kopf wiring of ProxmoxVM: reconcile on change and on a resync timer, destroy (or retain) on delete.

The handlers only translate: body → `VmRef` (spec validated by `proxnix.api.validation`), then the reconcile's
`Outcome` → `apply_outcome` (status, Events, kopf's retry or stall).
"""

from __future__ import annotations

import time
from typing import Any

import kopf

from proxnix.adapters.kube import KubeError
from proxnix.api.gitrepo import INFO as GITREPO
from proxnix.api.meta import ANNOTATION_REQUESTED_AT, GROUP, VERSION
from proxnix.api.proxmoxvm import INFO, Phase, ProxmoxVMSpec, ProxmoxVMStatus
from proxnix.api.validation import InvalidSpec, validate_spec
from proxnix.handlers.bodies import generation, object_ref
from proxnix.handlers.context import OperatorConfig, OperatorContext
from proxnix.handlers.metrics import measured
from proxnix.handlers.outcomes import apply_outcome, progress
from proxnix.reconcile.outcome import DELETE_UNJUDGED, Event, Outcome, Retry, short
from proxnix.reconcile.vm import VmRef, invalid_spec, kept_for_gitrepo

PLURAL = INFO.plural


def _status(body: kopf.Body) -> ProxmoxVMStatus:
    return ProxmoxVMStatus.model_validate(dict(body.status))


def _ref(body: kopf.Body) -> VmRef:
    """The object as the reconcile sees it; `InvalidSpec` if its spec does not validate."""
    return VmRef(
        namespace=body.metadata.namespace or "",
        name=body.metadata.name or "",
        uid=body.metadata.uid or "",
        generation=generation(body),
        spec=validate_spec(ProxmoxVMSpec, body.spec),
        status=_status(body),
        requested_at=body.metadata.annotations.get(ANNOTATION_REQUESTED_AT, ""),
        owner_references=tuple(dict(o) for o in body.metadata.get("ownerReferences") or ()),
    )


async def _kept_for_gitrepo(ctx: OperatorContext, ref: VmRef) -> Outcome | None:
    """The VM kept because its controlling GitRepo is being deleted (or is gone) without deletionPolicy Delete;
    a retry when that GitRepo cannot be read (never destroy on doubt)."""
    owner = ref.controlling_gitrepo
    if owner is None:
        return None
    try:
        gitrepo = await ctx.kube.get_object(GITREPO.plural, ref.namespace, str(owner.get("name", "")))
    except KubeError as exc:
        message = f"GitRepo {owner.get('name')!r} cannot be read ({short(exc)}); VM kept until it can"
        return Outcome(done=False, retry=Retry(DELETE_UNJUDGED, message))
    return kept_for_gitrepo(ref, gitrepo)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Add the ProxmoxVM handlers to `registry`."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @measured("ProxmoxVM", "reconcile")
    async def vm_changed(body: kopf.Body, memo: Any, retry: int, **_: Any) -> None:
        """Make the VM on its node match the spec."""
        ctx: OperatorContext = memo.ctx
        obj = object_ref(INFO, body)
        try:
            ref = _ref(body)
        except InvalidSpec as exc:
            outcome = invalid_spec(_status(body), generation(body), f"invalid spec: {exc}")
        else:
            outcome = await ctx.reconciler.reconcile(ref, max_age=0, progress=progress(ctx.kube, obj))
        await apply_outcome(ctx.kube, obj, body.status, outcome, attempt=retry)

    # harden (issue 10): the timer ticks every node_tick; a resync runs every resync_interval, or at once when the
    # node's liveness verdict is not the one the last resync saw (a node gone or back shows within a tick).
    tick = min(config.resync_interval, config.node_tick)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=tick, id="resync", registry=registry)
    async def vm_resync_tick(body: kopf.Body, memo: Any, **_: Any) -> None:
        """Resync when due (see above); a tick that is not due costs nothing and is not counted."""
        ctx: OperatorContext = memo.ctx
        uid = body.metadata.uid or ""
        if body.metadata.get("deletionTimestamp") or ctx.reconciler.busy(uid):
            return
        alive = ctx.nodes.alive(body.metadata.namespace or "", str(body.spec.get("node", "")))
        last = memo.vm_resynced.get(uid)
        if last is not None and time.monotonic() - last[0] < config.resync_interval and last[1] == alive:
            return
        memo.vm_resynced[uid] = (time.monotonic(), alive)
        await vm_resync(body=body, memo=memo)

    @measured("ProxmoxVM", "resync")
    async def vm_resync(body: kopf.Body, memo: Any) -> None:
        """Re-observe from the node's cached inventory (one call per node per interval) and correct drift."""
        ctx: OperatorContext = memo.ctx
        try:
            ref = _ref(body)
        except InvalidSpec:
            return
        obj = object_ref(INFO, body)
        outcome = await ctx.reconciler.reconcile(
            ref, max_age=2 * config.resync_interval, drift=True, progress=progress(ctx.kube, obj)
        )
        await apply_outcome(ctx.kube, obj, body.status, outcome, attempt=None)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="destroy", registry=registry)
    @measured("ProxmoxVM", "destroy")
    async def vm_deleted(body: kopf.Body, memo: Any, retry: int, **_: Any) -> None:
        """Destroy the VM (deletionPolicy Delete, not protected, ours) or keep it; then let the object go."""
        ctx: OperatorContext = memo.ctx
        obj = object_ref(INFO, body)
        try:
            ref = _ref(body)
        except InvalidSpec as exc:
            kept = Outcome(events=[Event("Warning", "Retained", f"spec invalid ({exc}); VM left alone")])
            await apply_outcome(ctx.kube, obj, body.status, kept, attempt=retry)
            return
        await progress(ctx.kube, obj)({"phase": Phase.DELETING.value})
        outcome = await _kept_for_gitrepo(ctx, ref) or await ctx.reconciler.delete(ref)
        await apply_outcome(ctx.kube, obj, body.status, outcome, attempt=retry)
        if outcome.done:
            ctx.reconciler.forget(ref.uid)
            memo.vm_resynced.pop(ref.uid, None)
