"""Assembling the sidecar from a store: index, secret cache, service, metrics and the aiohttp app, wired together.

`create_sidecar(store, ...)` is what `main` runs against the Kubernetes API and what tests and the benchmark run
against `MemoryStore`. The app's cleanup context runs the index's list loop while the app serves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from proxnix.webhook.app import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY, build_app
from proxnix.webhook.index import GitRepoIndex, SecretCache
from proxnix.webhook.metrics import Metrics
from proxnix.webhook.service import PushService
from proxnix.webhook.store import GitRepoStore


@dataclass
class Sidecar:
    """The assembled parts (kept for tests to look into)."""

    store: GitRepoStore
    index: GitRepoIndex
    secrets: SecretCache
    service: PushService
    metrics: Metrics
    app: web.Application


def create_sidecar(
    store: GitRepoStore,
    *,
    namespace: str | None = None,
    insecure: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    resync_interval: float = 30.0,
    miss_interval: float = 1.0,
    secret_ttl: float = 10.0,
    secret_min_refresh: float = 1.0,
) -> Sidecar:
    """A sidecar serving GitRepos of `namespace` (None: all namespaces) from `store`."""
    metrics = Metrics()
    secrets = SecretCache(store, ttl=secret_ttl, min_refresh=secret_min_refresh)
    index: GitRepoIndex

    def on_list(reason: str, ok: bool, size: int) -> None:
        metrics.observe_list(reason, ok, size)
        if ok:
            secrets.retain((e.namespace, e.secret_name) for e in index.entries() if e.secret_name)

    index = GitRepoIndex(
        store, namespace, resync_interval=resync_interval, miss_interval=miss_interval, on_list=on_list
    )
    service = PushService(store, index, secrets, insecure=insecure, namespace=namespace)
    app = build_app(service, index, metrics, max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s)

    async def run_index(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(index.run(), name="gitrepo-index")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await index.close()

    app.cleanup_ctx.append(run_index)
    return Sidecar(store, index, secrets, service, metrics, app)
