"""kopf wiring of ProxmoxNode: (re)configure and probe on change, probe on a timer, drop the pool on delete.

The handlers only translate: body → `NodeRef` (spec validated by `proxnix.api.validation`), then the probe's
`Outcome` → `apply_outcome` (status, Events, kopf's retry or stall).
"""

from __future__ import annotations

import time
from typing import Any

import kopf

from proxnix.api.meta import GROUP, VERSION
from proxnix.api.proxmoxnode import INFO, ProxmoxNodeSpec, ProxmoxNodeStatus
from proxnix.api.scalars import parse_duration
from proxnix.api.validation import InvalidSpec, validate_spec
from proxnix.handlers.bodies import generation, object_ref
from proxnix.handlers.context import OperatorConfig, OperatorContext
from proxnix.handlers.metrics import measured
from proxnix.handlers.outcomes import apply_outcome
from proxnix.reconcile.node_probe import NodeRef, invalid_spec, probe_node

PLURAL = INFO.plural
DEFAULT_PROBE_INTERVAL_S = 30.0


def _key(body: kopf.Body) -> str:
    return f"{body.metadata.namespace}/{body.metadata.name}"


async def _probe(body: kopf.Body, memo: Any, attempt: int | None) -> None:
    ctx: OperatorContext = memo.ctx
    obj = object_ref(INFO, body)
    status = ProxmoxNodeStatus.model_validate(dict(body.status))
    gen = generation(body)
    try:
        spec = validate_spec(ProxmoxNodeSpec, body.spec)
    except InvalidSpec as exc:
        outcome = invalid_spec(status, gen, f"invalid spec: {exc}")
    else:
        ref = NodeRef(obj.namespace, obj.name, gen, spec, status)
        outcome = await probe_node(ctx.nodes, ctx.kube, ref)
    alive = ctx.nodes.alive(obj.namespace, obj.name)
    memo.node_probed[_key(body)] = (time.monotonic(), alive)
    await apply_outcome(ctx.kube, obj, body.status, outcome, attempt=attempt)


def _probe_interval(spec: kopf.Spec) -> float:
    try:
        return parse_duration(validate_spec(ProxmoxNodeSpec, spec).probe_interval).total_seconds()
    except ValueError:  # InvalidSpec included: the change handler reports it
        return DEFAULT_PROBE_INTERVAL_S


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Add the ProxmoxNode handlers to `registry`."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="probe", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="probe", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="probe", registry=registry)
    @measured("ProxmoxNode", "probe")
    async def node_changed(body: kopf.Body, memo: Any, retry: int, **_: Any) -> None:
        """Configure the pool from the spec and Secret, and probe the node."""
        await _probe(body, memo, retry)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=config.node_tick, id="probe-timer", registry=registry)
    async def node_probe_tick(body: kopf.Body, spec: kopf.Spec, memo: Any, **_: Any) -> None:
        """Probe the node every spec.probeInterval (re-reading its Secret), and at once when its liveness verdict
        changed since the last probe; a tick with nothing due does nothing and is not counted as a reconcile."""
        last = memo.node_probed.get(_key(body))
        alive = memo.ctx.nodes.alive(body.metadata.namespace or "", body.metadata.name or "")
        if last is not None and time.monotonic() - last[0] < _probe_interval(spec) and last[1] == alive:
            return
        await node_probe(body=body, memo=memo)

    @measured("ProxmoxNode", "probe-timer")
    async def node_probe(body: kopf.Body, memo: Any) -> None:
        """The timer's probe: the result feeds the VMs' resync; the status says what failed, and the timer tries
        again at the next interval."""
        await _probe(body, memo, None)

    @kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, id="close-pool", registry=registry)
    @measured("ProxmoxNode", "close-pool")
    async def node_deleted(body: kopf.Body, memo: Any, **_: Any) -> None:
        """Close the node's SSH pool."""
        ctx: OperatorContext = memo.ctx
        await ctx.nodes.remove(body.metadata.namespace or "", body.metadata.name or "")
        memo.node_probed.pop(_key(body), None)
