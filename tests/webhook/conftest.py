"""Fixtures for webhook tests: an in-memory store, and a sidecar served by aiohttp's test server over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from proxnix.sources.webhooks.signatures import signature_headers
from proxnix.webhook.memory import MemoryStore
from proxnix.webhook.sidecar import Sidecar, create_sidecar
from tests.webhook.cases import ProviderCase

NS = "fleet"
SECRET = b"correct horse battery staple"
SECRET_NAME = "webhook-token"

ClientFactory = Callable[..., Awaitable[tuple[TestClient[Any, Any], Sidecar]]]


@pytest.fixture
def store() -> MemoryStore:
    """A store with the shared webhook Secret (its value ends in a newline, as `echo > file` writes it)."""
    memory = MemoryStore()
    memory.secrets[(NS, SECRET_NAME, "token")] = SECRET + b"\n"
    return memory


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """`await make_client(store, **create_sidecar_options)` → (client, sidecar), index synced when the store lists."""
    clients: list[TestClient[Any, Any]] = []

    async def make(
        store: MemoryStore, *, wait_synced: bool = True, **options: Any
    ) -> tuple[TestClient[Any, Any], Sidecar]:
        sidecar = create_sidecar(store, **options)
        client: TestClient[Any, Any] = TestClient(TestServer(sidecar.app))
        await client.start_server()
        clients.append(client)
        if wait_synced:
            await asyncio.wait_for(sidecar.index.wait_synced(), timeout=5)
        return client, sidecar

    yield make
    for client in clients:
        await client.close()


def signed(
    case: ProviderCase, fixture: str, secret: bytes = SECRET, body: bytes | None = None
) -> dict[str, str]:
    """The fixture's headers plus the signature `case.provider` sends for `body` (default: the fixture's body)."""
    raw = case.body(fixture) if body is None else body
    return case.headers(fixture) | signature_headers(case.provider, raw, secret)
