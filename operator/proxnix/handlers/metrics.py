"""The operator's Prometheus metrics (`proxnix operator --metrics-listen`), in a registry of its own.

Two sources, so that the code that does the work never imports prometheus_client:
- handler calls, measured by the `measured` decorator around each kopf handler: reconciles by kind, handler and
  result (ok, retry, stalled, error) and their duration; and the GitRepo reconcile's steps (fetch, eval, build,
  apply), reported through its `StepTimer` port (`observe_step`);
- live counters read at scrape time by a collector: every node's SSH pool (`PoolStats`: sessions in use, remote
  commands by kind — `qm create`, `pvesh get`, … — with failures and latency, image uploads with bytes and
  seconds), the nix builds of the GitRepo controller (count, failures, seconds, running) and the ProxmoxVMs by phase
  (a kopf index kept current from the watch stream).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import kopf
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from proxnix.adapters.nix import BuildStats
from proxnix.adapters.ssh_pool import LATENCY_BOUNDS
from proxnix.reconcile.node_directory import NodeDirectory

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_RECONCILE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
PHASE_INDEX = "vm_phases"


class _LiveCollector(Collector):
    """Reads the node directory's pools and the VM phase index when Prometheus scrapes."""

    def __init__(self, nodes: NodeDirectory, builds: BuildStats | None) -> None:
        self.nodes = nodes
        self.builds = builds
        self.phases: Mapping[str, Any] | None = None

    def collect(self) -> Iterator[Any]:
        sessions = GaugeMetricFamily(
            "proxnix_node_ssh_sessions_in_use",
            "SSH sessions (commands, image uploads) open on the node now.",
            labels=["node"],
        )
        commands = CounterMetricFamily(
            "proxnix_node_commands",
            "Remote commands run on the node, by kind and result.",
            labels=["node", "command", "result"],
        )
        latency = HistogramMetricFamily(
            "proxnix_node_command_duration_seconds",
            "Remote command latency by node and kind.",
            labels=["node", "command"],
        )
        uploads = CounterMetricFamily(
            "proxnix_image_uploads", "Images uploaded to the node.", labels=["node"]
        )
        upload_bytes = CounterMetricFamily(
            "proxnix_image_upload_bytes", "Bytes of images uploaded.", labels=["node"]
        )
        upload_seconds = CounterMetricFamily(
            "proxnix_image_upload_seconds", "Seconds spent transferring images.", labels=["node"]
        )
        for handle in self.nodes.handles():
            node, stats = handle.node_name, handle.pool.stats
            sessions.add_metric([node], stats.active)
            for kind, tally in sorted(stats.by_kind.items()):
                commands.add_metric([node, kind, "ok"], tally.count - tally.failures)
                commands.add_metric([node, kind, "failed"], tally.failures)
                cumulative, buckets = 0, []
                for bound, count in zip(LATENCY_BOUNDS, tally.buckets, strict=True):
                    cumulative += count
                    buckets.append((repr(bound), cumulative))
                buckets.append(("+Inf", tally.count))
                latency.add_metric([node, kind], buckets, tally.seconds)
            uploads.add_metric([node], stats.uploads)
            upload_bytes.add_metric([node], stats.upload_bytes)
            upload_seconds.add_metric([node], stats.upload_seconds)
        yield from (sessions, commands, latency, uploads, upload_bytes, upload_seconds)
        if self.builds is not None:
            b = self.builds
            builds = CounterMetricFamily(
                "proxnix_nix_builds", "nix build runs, by result.", labels=["result"]
            )
            builds.add_metric(["ok"], b.builds - b.failures)
            builds.add_metric(["failed"], b.failures)
            yield builds
            yield CounterMetricFamily(
                "proxnix_nix_build_seconds", "Seconds spent in nix build.", value=b.seconds
            )
            yield GaugeMetricFamily("proxnix_nix_builds_running", "nix builds running now.", value=b.running)
        vms = GaugeMetricFamily("proxnix_vms", "ProxmoxVMs by phase.", labels=["phase"])
        for phase, store in sorted((self.phases or {}).items()):
            vms.add_metric([phase], len(store))
        yield vms


class OperatorMetrics:
    """Every metric of `proxnix operator`; kept in kopf's memo."""

    def __init__(self, nodes: NodeDirectory, builds: BuildStats | None = None) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "proxnix_reconciles",
            "Handler calls by kind, handler and result (ok, retry, stalled, error).",
            ["kind", "handler", "result"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "proxnix_reconcile_duration_seconds",
            "Handler call duration by kind and handler.",
            ["kind", "handler"],
            buckets=_RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.gitrepo_steps = Histogram(
            "proxnix_gitrepo_step_seconds",
            "GitRepo reconcile step duration (fetch, settle: waiting for a burst of pushes to pause, eval, build, apply; "
            "eval and build only for a new revision).",
            ["step"],
            buckets=_RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.live = _LiveCollector(nodes, builds)
        self.registry.register(self.live)

    def watch_phases(self, index: Mapping[str, Any]) -> None:
        """Count ProxmoxVMs by phase from kopf's index (phase → the objects in it)."""
        self.live.phases = index

    def observe(self, kind: str, handler: str, result: str, seconds: float) -> None:
        self.reconciles.labels(kind=kind, handler=handler, result=result).inc()
        self.duration.labels(kind=kind, handler=handler).observe(seconds)

    def observe_step(self, step: str, seconds: float) -> None:
        """A GitRepo reconcile step took `seconds` (the reconcile's `StepTimer` port)."""
        self.gitrepo_steps.labels(step=step).observe(seconds)

    def serve(self, listen: str) -> None:
        """Serve `/metrics` on `HOST:PORT` from a daemon thread."""
        host, _, port = listen.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)  # noqa: S104


def result_of(exc: Exception | None) -> str:
    """How a handler call ended, as a metric label."""
    if exc is None:
        return "ok"
    if isinstance(exc, kopf.TemporaryError):
        return "retry"
    if isinstance(exc, kopf.PermanentError):
        return "stalled"
    return "error"


def measured(kind: str, handler: str) -> Callable[[F], F]:
    """Count and time each call of a kopf handler (the metrics object is `memo.metrics`)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            metrics: OperatorMetrics | None = getattr(kwargs.get("memo"), "metrics", None)
            started = time.monotonic()
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:  # a cancelled call (operator stopping) is not counted
                if metrics is not None:
                    metrics.observe(kind, handler, result_of(exc), time.monotonic() - started)
                raise
            if metrics is not None:
                metrics.observe(kind, handler, "ok", time.monotonic() - started)
            return result

        return call  # type: ignore[return-value]

    return wrap


def phase_of(body: kopf.Body) -> str:
    """A ProxmoxVM's phase as the phase index keys it (`Pending` before the first status)."""
    return str((body.get("status") or {}).get("phase") or "Pending")
