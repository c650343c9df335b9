"""kopf wiring of ProxmoxVM: reconcile on change and on a resync timer, destroy (or retain) on delete.

The handlers only translate: body → `VmRef`, `VmOutcome` → status patch, Events and kopf's retry errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from proxnix.adapters.kube import KubeError
from proxnix.api.conditions import ConditionType, find_condition, set_condition
from proxnix.api.meta import ANNOTATION_REQUESTED_AT, GROUP, VERSION
from proxnix.api.proxmoxvm import INFO, Phase, ProxmoxVMSpec, ProxmoxVMStatus
from proxnix.handlers.context import OperatorConfig, OperatorContext
from proxnix.reconcile.vm import Progress
from proxnix.reconcile.vm_types import VmEvent, VmOutcome, VmRef

PLURAL = INFO.plural
log = logging.getLogger(__name__)


class InvalidSpec(Exception):
    """The object's spec does not validate."""


def _status(body: kopf.Body) -> ProxmoxVMStatus:
    return ProxmoxVMStatus.model_validate(dict(body.status))


def _ref(body: kopf.Body) -> VmRef:
    try:
        spec = ProxmoxVMSpec.model_validate(dict(body.spec))
    except ValidationError as exc:
        raise InvalidSpec(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        ) from None
    return VmRef(
        namespace=body.metadata.namespace or "",
        name=body.metadata.name or "",
        uid=body.metadata.uid or "",
        generation=int(body.metadata.get("generation") or 0),
        spec=spec,
        status=_status(body),
        requested_at=body.metadata.annotations.get(ANNOTATION_REQUESTED_AT, ""),
    )


def _invalid(body: kopf.Body, patch: kopf.Patch, message: str) -> None:
    status = _status(body)
    gen = int(body.metadata.get("generation") or 0)
    conds = status.conditions
    for type_ in (ConditionType.STALLED, ConditionType.READY):
        conds = set_condition(
            conds, type_, "True" if type_ == "Stalled" else "False", "InvalidSpec", message, gen
        )
    status.conditions = conds
    status.phase = Phase.FAILED
    status.observed_generation = gen
    patch.status.update(status.to_wire())


def _post(body: kopf.Body, events: list[VmEvent]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


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


def _apply(body: kopf.Body, patch: kopf.Patch, outcome: VmOutcome) -> None:
    patch.status.update(replacing(dict(body.status), outcome.status.to_wire()))


def _progress(ctx: OperatorContext, body: kopf.Body) -> Progress:
    """A progress reporter for one object: patches its status at once (kopf's patch only lands after the handler)."""
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""

    async def report(status: dict[str, Any]) -> None:
        try:
            await ctx.kube.patch_status(PLURAL, namespace, name, status)
        except KubeError as exc:  # progress is best effort; the final status still comes from the handler
            log.warning("%s/%s: progress not reported: %s", namespace, name, exc)

    return report


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Add the ProxmoxVM handlers to `registry`."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    async def vm_changed(body: kopf.Body, patch: kopf.Patch, memo: Any, retry: int, **_: Any) -> None:
        """Make the VM on its node match the spec."""
        ctx: OperatorContext = memo.ctx
        try:
            ref = _ref(body)
        except InvalidSpec as exc:
            _invalid(body, patch, str(exc))
            raise kopf.PermanentError(f"invalid spec: {exc}") from None
        outcome = await ctx.reconciler.reconcile(ref, max_age=0, progress=_progress(ctx, body))
        _apply(body, patch, outcome)
        _post(body, outcome.events)
        if outcome.stalled:
            raise kopf.PermanentError(outcome.retry_reason or _ready_message(outcome))
        if outcome.retry_after is not None:
            raise kopf.TemporaryError(outcome.retry_reason, delay=outcome.retry_after)
        if outcome.waiting_for_agent and retry < config.agent_wait_retries:
            raise kopf.TemporaryError("waiting for the guest agent to report addresses", delay=3)

    # harden (issue 10): the timer ticks every node_tick; a resync runs every resync_interval, or at once when the
    # node's liveness verdict is not the one the last resync saw (a node gone or back shows within a tick).
    tick = min(config.resync_interval, config.node_tick)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=tick, id="resync", registry=registry)
    async def vm_resync(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        """Re-observe from the node's cached inventory (one call per node per interval) and correct drift."""
        ctx: OperatorContext = memo.ctx
        uid = body.metadata.uid or ""
        if body.metadata.get("deletionTimestamp") or ctx.reconciler.busy(uid):
            return
        alive = ctx.nodes.alive(body.metadata.namespace or "", str(body.spec.get("node", "")))
        last = memo.vm_resynced.get(uid)
        if last is not None and time.monotonic() - last[0] < config.resync_interval and last[1] == alive:
            return
        memo.vm_resynced[uid] = (time.monotonic(), alive)
        try:
            ref = _ref(body)
        except InvalidSpec:
            return
        outcome = await ctx.reconciler.reconcile(
            ref, max_age=2 * config.resync_interval, drift=True, progress=_progress(ctx, body)
        )
        _apply(body, patch, outcome)
        before = find_condition(ref.status.conditions, ConditionType.STALLED)
        after = find_condition(outcome.status.conditions, ConditionType.STALLED)
        newly_stalled = after is not None and (
            before is None or (before.status, before.reason) != (after.status, after.reason)
        )
        _post(body, [e for e in outcome.events if e.type == "Normal" or newly_stalled])

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="destroy", registry=registry)
    async def vm_deleted(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        """Destroy the VM (deletionPolicy Delete, not protected, ours) or keep it; then let the object go."""
        ctx: OperatorContext = memo.ctx
        try:
            ref = _ref(body)
        except InvalidSpec as exc:
            kopf.event(
                body, type="Warning", reason="Retained", message=f"spec invalid ({exc}); VM left alone"
            )
            return
        patch.status["phase"] = Phase.DELETING.value
        await _progress(ctx, body)({"phase": Phase.DELETING.value})
        outcome = await ctx.reconciler.delete(ref)
        _post(body, outcome.events)
        if not outcome.done:
            raise kopf.TemporaryError(outcome.message, delay=outcome.retry_after or 15)
        ctx.reconciler.forget(ref.uid)
        memo.vm_resynced.pop(ref.uid, None)


def _ready_message(outcome: VmOutcome) -> str:
    ready = find_condition(outcome.status.conditions, ConditionType.READY)
    return ready.message if ready else "stalled"
