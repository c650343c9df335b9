"""The operator's metrics: what the handlers and the node pools feed in comes out of the registry, the command
labels stay bounded, and the Grafana dashboard asks only for metrics that exist."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import kopf
import pytest
from prometheus_client import CollectorRegistry

from proxnix.adapters.ssh_pool import PoolStats
from proxnix.handlers.metrics import OperatorMetrics, measured
from proxnix.proxmox.shell import command_kind
from proxnix.reconcile.node_directory import NodeDirectory
from proxnix.webhook.metrics import Metrics as WebhookMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "manifests" / "components" / "monitoring" / "dashboard.json"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


class FakeDirectory:
    def __init__(self, **stats: PoolStats) -> None:
        self.stats = stats

    def handles(self) -> list[Any]:
        return [SimpleNamespace(node_name=n, pool=SimpleNamespace(stats=s)) for n, s in self.stats.items()]


def sample_values(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry can export (from each family's type, samples present or not)."""
    names = set()
    for family in registry.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("qm create 100 --name a", "qm create"),
        ("/usr/sbin/qm start 100", "qm start"),
        ("pvesh get /version --output-format json", "pvesh get"),
        ("cat /etc/pve/qemu-server/100.conf", "cat"),
        ("set -e; mkdir -p /x && mv a b", "script"),
        ("qm 'create; rm -rf /'", "qm"),
        ("qm create 131 --tags 'proxnix;nix-abc' --description 'owner: a\nline;'", "qm create"),
        ("qm list | grep x", "script"),
        ("", "script"),
        ("'unbalanced", "script"),
    ],
)
def test_command_kinds_are_short_and_bounded(command: str, kind: str) -> None:
    assert command_kind(command) == kind


def test_node_pool_counters_come_out_at_scrape_time() -> None:
    stats = PoolStats(active=2)
    stats.record_command("qm create 100", 0.3, 0)
    stats.record_command("qm create 101", 7.0, 2)
    stats.record_upload(1000, 0.5)
    metrics = OperatorMetrics(cast(NodeDirectory, FakeDirectory(pve1=stats)))
    metrics.watch_phases({"Running": [1, 2, 3], "Pending": [4]})
    values = sample_values(metrics.registry)
    node = ("node", "pve1")
    assert values[("proxnix_node_ssh_sessions_in_use", (node,))] == 2
    assert values[("proxnix_node_commands_total", (("command", "qm create"), node, ("result", "ok")))] == 1
    assert (
        values[("proxnix_node_commands_total", (("command", "qm create"), node, ("result", "failed")))] == 1
    )
    assert (
        values[
            ("proxnix_node_command_duration_seconds_bucket", (("command", "qm create"), ("le", "0.5"), node))
        ]
        == 1
    )
    assert (
        values[
            ("proxnix_node_command_duration_seconds_bucket", (("command", "qm create"), ("le", "+Inf"), node))
        ]
        == 2
    )
    assert values[
        ("proxnix_node_command_duration_seconds_sum", (("command", "qm create"), node))
    ] == pytest.approx(7.3)
    assert values[("proxnix_image_upload_bytes_total", (node,))] == 1000
    assert values[("proxnix_vms", (("phase", "Running"),))] == 3


def test_nix_builds_come_out_at_scrape_time() -> None:
    from proxnix.adapters.nix import BuildStats

    metrics = OperatorMetrics(
        cast(NodeDirectory, FakeDirectory()), BuildStats(builds=5, failures=2, seconds=9.5, running=1)
    )
    values = sample_values(metrics.registry)
    assert values[("proxnix_nix_builds_total", (("result", "ok"),))] == 3
    assert values[("proxnix_nix_builds_total", (("result", "failed"),))] == 2
    assert values[("proxnix_nix_build_seconds_total", ())] == 9.5
    assert values[("proxnix_nix_builds_running", ())] == 1


def test_gitrepo_step_durations_come_out_as_a_histogram_by_step() -> None:
    metrics = OperatorMetrics(cast(NodeDirectory, FakeDirectory()))
    for step, seconds in (("fetch", 0.2), ("eval", 1.5), ("build", 40.0), ("fetch", 0.03)):
        metrics.observe_step(step, seconds)
    values = sample_values(metrics.registry)
    fetch = ("step", "fetch")
    assert values[("proxnix_gitrepo_step_seconds_count", (fetch,))] == 2
    assert values[("proxnix_gitrepo_step_seconds_sum", (fetch,))] == pytest.approx(0.23)
    assert values[("proxnix_gitrepo_step_seconds_bucket", (("le", "0.05"), fetch))] == 1
    assert values[("proxnix_gitrepo_step_seconds_bucket", (("le", "30.0"), ("step", "build")))] == 0
    assert values[("proxnix_gitrepo_step_seconds_bucket", (("le", "60.0"), ("step", "build")))] == 1
    assert ("proxnix_gitrepo_step_seconds_count", (("step", "apply"),)) not in values


async def test_measured_counts_each_handler_result() -> None:
    metrics = OperatorMetrics(cast(NodeDirectory, FakeDirectory()))
    memo = SimpleNamespace(metrics=metrics)

    @measured("ProxmoxVM", "reconcile")
    async def handler(outcome: BaseException | None, **_: Any) -> None:
        if outcome is not None:
            raise outcome

    for outcome in (None, kopf.TemporaryError("later"), kopf.PermanentError("no"), RuntimeError("bug")):
        with pytest.raises(type(outcome)) if outcome is not None else contextlib.nullcontext():
            await handler(outcome=outcome, memo=memo)
    with pytest.raises(asyncio.CancelledError):
        await handler(outcome=asyncio.CancelledError(), memo=memo)
    values = sample_values(metrics.registry)
    for result in ("ok", "retry", "stalled", "error"):
        labels = (("handler", "reconcile"), ("kind", "ProxmoxVM"), ("result", result))
        assert values[("proxnix_reconciles_total", labels)] == 1
    count = (("handler", "reconcile"), ("kind", "ProxmoxVM"))
    assert (
        values[("proxnix_reconcile_duration_seconds_count", count)] == 4
    )  # the cancelled call is not counted


def test_dashboard_uses_only_exported_metrics() -> None:
    from proxnix.adapters.nix import BuildStats

    exported = exported_names(OperatorMetrics(cast(NodeDirectory, FakeDirectory()), BuildStats()).registry)
    exported |= exported_names(WebhookMetrics().registry)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bproxnix_[a-z0-9_]+", expr)}
    assert len(exprs) >= 8
    assert used, "the dashboard queries no proxnix metric"
    assert used - exported == set()
    assert "proxnix_no_such_metric_total" not in exported  # the check above can fail
