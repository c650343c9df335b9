"""kopf wiring of ProxmoxNode: (re)configure and probe on change, probe on a timer, drop the pool on delete."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import kopf

from proxnix.api.meta import GROUP, VERSION
from proxnix.api.proxmoxnode import INFO, ProxmoxNodeSpec, ProxmoxNodeStatus
from proxnix.api.scalars import parse_duration
from proxnix.handlers.context import OperatorConfig, OperatorContext
from proxnix.reconcile.node import NodeRef, probe_node

PLURAL = INFO.plural


def _ref(body: kopf.Body) -> NodeRef:
    return NodeRef(
        namespace=body.metadata.namespace or "",
        name=body.metadata.name or "",
        generation=int(body.metadata.get("generation") or 0),
        spec=dict(body.spec),
        status=ProxmoxNodeStatus.model_validate(dict(body.status)),
    )


async def _probe(body: kopf.Body, patch: kopf.Patch, memo: Any) -> None:
    ctx: OperatorContext = memo.ctx
    outcome = await probe_node(ctx.nodes, ctx.kube, _ref(body))
    patch.status.update(outcome.status.to_wire())
    alive = ctx.nodes.alive(body.metadata.namespace or "", body.metadata.name or "")
    memo.node_probed[f"{body.metadata.namespace}/{body.metadata.name}"] = (time.monotonic(), alive)
    if outcome.problem and outcome.permanent:
        raise kopf.PermanentError(outcome.problem)
    if outcome.problem:
        raise kopf.TemporaryError(outcome.problem, delay=15)


def _probe_interval(spec: kopf.Spec) -> float:
    try:
        return parse_duration(ProxmoxNodeSpec.model_validate(dict(spec)).probe_interval).total_seconds()
    except ValueError:
        return 30.0


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Add the ProxmoxNode handlers to `registry`."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="probe", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="probe", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="probe", registry=registry)
    async def node_changed(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        """Configure the pool from the spec and Secret, and probe the node."""
        await _probe(body, patch, memo)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=config.node_tick, id="probe-timer", registry=registry)
    async def node_probe(body: kopf.Body, spec: kopf.Spec, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        """Probe the node every spec.probeInterval (re-reading its Secret); the result feeds the VMs' resync."""
        key = f"{body.metadata.namespace}/{body.metadata.name}"
        last = memo.node_probed.get(key)
        # harden (issue 10): probe at once when the liveness verdict changed since the last probe
        alive = memo.ctx.nodes.alive(body.metadata.namespace or "", body.metadata.name or "")
        if last is not None and time.monotonic() - last[0] < _probe_interval(spec) and last[1] == alive:
            return
        # The status says what failed; the timer tries again at the next interval.
        with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
            await _probe(body, patch, memo)

    @kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, id="close-pool", registry=registry)
    async def node_deleted(body: kopf.Body, memo: Any, **_: Any) -> None:
        """Close the node's SSH pool."""
        ctx: OperatorContext = memo.ctx
        await ctx.nodes.remove(body.metadata.namespace or "", body.metadata.name or "")
        memo.node_probed.pop(f"{body.metadata.namespace}/{body.metadata.name}", None)
