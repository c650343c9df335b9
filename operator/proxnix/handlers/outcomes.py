"""The one place an `Outcome` (`proxnix.reconcile.outcome`) becomes Kubernetes effects, for every kind:

1. the status, written through the kube adapter's status subresource merge patch — the same path as the progress
   reports made during a reconcile (`progress`), as a patch that also removes what the new status left out;
2. the Events, in order (a failed post is logged, never fails the handler);
3. for a change handler (`attempt` = kopf's retry count): stall → `kopf.PermanentError` (kopf stops retrying until
   the object changes), retry → `kopf.TemporaryError(delay=policy.delay_s)` while the policy allows another
   attempt, an unfinished deletion without a retry → retry. A timer (`attempt=None`) never raises: its next tick is
   the retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from proxnix.adapters.kube import KubeApi, KubeError, NotFound
from proxnix.api.kinds import ObjectRef
from proxnix.reconcile.outcome import DELETE_FAILED, STATUS_NOT_WRITTEN, Outcome, Progress

log = logging.getLogger(__name__)


def replacing(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch that turns `old` into `new`: keys gone from `new` are set to null (a merge patch keeps what it
    does not mention), nested objects likewise; kopf's own `status.kopf` is left alone."""
    patch: dict[str, Any] = dict(new)
    for key, value in old.items():
        if key == "kopf":
            continue
        if key not in new:
            patch[key] = None
        elif isinstance(value, Mapping) and isinstance(new[key], Mapping):
            patch[key] = replacing(value, new[key])
    return patch


async def write_status(kube: KubeApi, obj: ObjectRef, patch: Mapping[str, Any]) -> None:
    """Merge-patch `obj`'s status (progress and final status alike). Raises `KubeError`; a deleted object is no
    error (there is nothing left to report on)."""
    try:
        await kube.patch_status(obj, patch)
    except NotFound:
        log.debug("%s: gone before its status was written", obj)


def progress(kube: KubeApi, obj: ObjectRef) -> Progress:
    """A progress reporter for one object (best effort: the final status still comes from `apply_outcome`)."""

    async def report(status: dict[str, Any]) -> None:
        try:
            await write_status(kube, obj, status)
        except KubeError as exc:
            log.warning("%s: progress not reported: %s", obj, exc)

    return report


async def apply_outcome(
    kube: KubeApi, obj: ObjectRef, previous: Mapping[str, Any], outcome: Outcome, *, attempt: int | None
) -> None:
    """Write the outcome's status (replacing `previous`, the status the handler was called with), post its Events,
    then raise kopf's retry or stall for a change handler (`attempt` is kopf's retry count; None for a timer)."""
    status_error: KubeError | None = None
    if outcome.status is not None:
        try:
            await write_status(kube, obj, replacing(previous, outcome.status.to_wire()))
        except KubeError as exc:
            status_error = exc
            log.warning("%s: status not written: %s", obj, exc)
    # Events go out whatever happened to the status: what was done on the node is not told twice.
    for event in outcome.events:
        try:
            await kube.post_event(obj, event.type, event.reason, event.message)
        except KubeError as exc:
            log.warning("%s: Event %s not posted: %s", obj, event.reason, exc)
    if attempt is None:
        return
    if status_error is not None:
        raise kopf.TemporaryError(f"status not written: {status_error}", delay=STATUS_NOT_WRITTEN.delay_s)
    if outcome.stall:
        raise kopf.PermanentError(outcome.stall)
    if not outcome.done:
        # An unfinished deletion always retries: returning would let kopf remove the finalizer.
        delay = outcome.retry.policy.delay_s if outcome.retry is not None else DELETE_FAILED.delay_s
        raise kopf.TemporaryError(outcome.retry.reason if outcome.retry else "not finished", delay=delay)
    if outcome.retry is not None:
        policy = outcome.retry.policy
        if policy.max_attempts is None or attempt < policy.max_attempts:
            raise kopf.TemporaryError(outcome.retry.reason, delay=policy.delay_s)
