"""The kopf timers of ProxmoxNode (probe) and ProxmoxVM (resync) tick every few seconds; a tick with nothing due
does nothing and is not counted in `proxnix_reconciles_total`, so the metric shows work, not the clock."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import kopf

from proxnix.handlers import nodes, vms
from proxnix.handlers.context import OperatorConfig
from proxnix.handlers.metrics import OperatorMetrics
from proxnix.reconcile.node_directory import NodeDirectory
from tests.handlers.test_metrics import FakeDirectory, sample_values


class Nodes:
    def alive(self, namespace: str, name: str) -> bool:
        return True


def _timer(tick_id: str) -> Any:
    registry = kopf.OperatorRegistry()
    nodes.register(registry, OperatorConfig())
    vms.register(registry, OperatorConfig())
    (handler,) = [h for h in registry._spawning.get_all_handlers() if h.id == tick_id]
    return handler.fn


def _body(spec: dict[str, Any]) -> kopf.Body:
    raw = {"metadata": {"namespace": "ns", "name": "pve1", "uid": "u1"}, "spec": spec, "status": {}}
    return kopf.Body(cast(kopf.RawBody, raw))


def _counted(metrics: OperatorMetrics) -> float:
    return sum(
        v for (name, _), v in sample_values(metrics.registry).items() if name == "proxnix_reconciles_total"
    )


async def test_a_node_probe_tick_with_nothing_due_is_not_counted() -> None:
    metrics = OperatorMetrics(cast(NodeDirectory, FakeDirectory()))
    body = _body({"probeInterval": "30s"})
    memo = SimpleNamespace(
        metrics=metrics,
        ctx=SimpleNamespace(nodes=Nodes()),
        node_probed={"ns/pve1": (time.monotonic(), True)},
    )
    await _timer("probe-timer")(body=body, spec=body.spec, memo=memo)
    assert _counted(metrics) == 0


async def test_a_vm_resync_tick_with_nothing_due_is_not_counted() -> None:
    metrics = OperatorMetrics(cast(NodeDirectory, FakeDirectory()))
    body = _body({"node": "pve1"})
    busy = SimpleNamespace(busy=lambda uid: False)
    memo = SimpleNamespace(
        metrics=metrics,
        ctx=SimpleNamespace(nodes=Nodes(), reconciler=busy),
        vm_resynced={"u1": (time.monotonic(), True)},
    )
    await _timer("resync")(body=body, memo=memo)
    assert _counted(metrics) == 0
