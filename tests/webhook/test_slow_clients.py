"""Slow and vanishing clients against the sidecar served as `proxnix webhook` serves it (`make_runner`, real TCP on
loopback): half-sent headers and idle connections are closed, a stalled body is answered 408, and a client that
disconnects is neither a 500 nor an error in the logs or metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from proxnix.webhook.app import LINGER_S, make_runner
from proxnix.webhook.memory import MemoryStore
from proxnix.webhook.sidecar import Sidecar, create_sidecar

IDLE_S = 1.0
BODY_S = 1.0


@pytest.fixture
async def served(store: MemoryStore) -> AsyncIterator[tuple[Sidecar, int]]:
    sidecar = create_sidecar(store, body_timeout_s=BODY_S)
    runner = make_runner(sidecar.app, idle_timeout_s=IDLE_S, shutdown_timeout_s=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await asyncio.wait_for(sidecar.index.wait_synced(), 5)
    yield sidecar, port
    await runner.cleanup()


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit)
    return time.monotonic() - started, data


async def test_half_sent_headers_are_closed_after_the_idle_timeout(served: tuple[Sidecar, int]) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /hook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: pu")  # and then nothing
    await writer.drain()
    took, _ = await _closed_after(reader, IDLE_S + 5)
    assert took < IDLE_S + 3
    writer.close()


async def test_an_idle_connection_is_closed(served: tuple[Sidecar, int]) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    took, data = await _closed_after(reader, IDLE_S + 5)
    assert data == b""
    assert took < IDLE_S + 3
    writer.close()


async def test_a_stalled_body_is_answered_408(served: tuple[Sidecar, int]) -> None:
    sidecar, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b'POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ref'
    )
    await writer.drain()
    took, data = await _closed_after(reader, BODY_S + LINGER_S + 5)
    assert data.startswith(b"HTTP/1.1 408"), data[:80]
    assert took < BODY_S + LINGER_S + 2
    assert 'outcome="timeout"' in sidecar.metrics.render().decode()
    writer.close()


async def test_a_client_that_disconnects_mid_body_is_not_a_server_error(
    served: tuple[Sidecar, int], caplog: pytest.LogCaptureFixture
) -> None:
    sidecar, port = served
    caplog.set_level(logging.DEBUG)
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b'POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ref'
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    deadline = time.monotonic() + 5
    while 'outcome="client_closed"' not in sidecar.metrics.render().decode():
        assert time.monotonic() < deadline, sidecar.metrics.render().decode()
        await asyncio.sleep(0.05)
    metrics = sidecar.metrics.render().decode()
    assert 'outcome="error"' not in metrics
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [
        r.getMessage() for r in caplog.records
    ]
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client that went away"
