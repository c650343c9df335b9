"""Prometheus metrics of the sidecar, in a registry of its own (so several apps can live in one test process)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Requests by provider and outcome, request latency, GitRepos marked, and the GitRepo index's lists."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "proxnix_webhook_requests",
            "Webhook requests by sender and outcome (accepted, unauthorized, bad_request, ...).",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "proxnix_webhook_request_duration_seconds",
            "Time to answer a webhook request, by sender.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.marked = Counter(
            "proxnix_webhook_gitrepos_marked",
            "GitRepos patched with a revision hint.",
            registry=self.registry,
        )
        self.index_lists = Counter(
            "proxnix_webhook_index_lists",
            "GitRepo lists made for the index, by reason (resync, miss, stale) and result (ok, error).",
            ["reason", "result"],
            registry=self.registry,
        )
        self.index_size = Gauge(
            "proxnix_webhook_index_gitrepos", "GitRepos in the index.", registry=self.registry
        )

    def observe_request(self, provider: str, outcome: str, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(provider=provider, outcome=outcome).inc()
        self.latency.labels(provider=provider).observe(seconds)

    def observe_list(self, reason: str, ok: bool, size: int) -> None:
        """Count one index list (the index's `on_list` hook)."""
        self.index_lists.labels(reason=reason, result="ok" if ok else "error").inc()
        if ok:
            self.index_size.set(size)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
