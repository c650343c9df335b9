"""A node found down is never reported from a cached view, and an inventory call hanging on it is abandoned as
soon as the liveness probe says so (its VMs then turn Unknown in seconds, not after the command timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from proxnix.adapters.node_liveness import LivenessSettings, NodeLiveness
from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.proxmox.errors import NodeUnreachable
from proxnix.proxmox.inventory import NodeInventory
from proxnix.reconcile.node_directory import NodeHandle

FAST = LivenessSettings(interval_s=0.1, timeout_s=0.2, retry_s=0.05, failures_to_down=2)


class SwitchPool:
    """Stands in for the liveness SshPool: answers `true` while `up`, else hangs (a frozen sshd)."""

    def __init__(self) -> None:
        self.up = True
        self.dropped = 0

    async def run(self, command: str, *, timeout_s: float) -> object:
        if not self.up:
            await asyncio.sleep(3600)
        return object()

    async def drop_connections(self) -> None:
        self.dropped += 1


class HangingClient:
    """An inventory that answers once, then hangs (the node froze after the first read)."""

    def __init__(self) -> None:
        self.calls = 0

    async def inventory(self) -> NodeInventory:
        self.calls += 1
        if self.calls > 1:
            await asyncio.sleep(3600)
        return NodeInventory(node="pve1", vms={}, cluster={})


@contextlib.asynccontextmanager
async def running(pool: SwitchPool, client: HangingClient) -> AsyncIterator[tuple[NodeHandle, NodeLiveness]]:
    """A handle whose liveness probe runs (and has answered once)."""
    node, probe = handle(pool, client)
    probe.start()
    try:
        await asyncio.wait_for(probe.wait_until(True), 5)
        yield node, probe
    finally:
        await probe.stop()


def handle(pool: SwitchPool, client: HangingClient) -> tuple[NodeHandle, NodeLiveness]:
    spec = ProxmoxNodeSpec.model_validate({"host": "127.0.0.1", "credentialsSecretRef": {"name": "s"}})
    probe = NodeLiveness(cast(Any, pool), "pve1", FAST)
    node = NodeHandle(
        key="ns/pve1",
        spec=spec,
        node_name="pve1",
        pool=cast(Any, None),
        client=cast(Any, client),
        liveness=probe,
    )
    return node, probe


async def test_a_hanging_inventory_is_abandoned_when_the_node_goes_down() -> None:
    pool, client = SwitchPool(), HangingClient()
    async with running(pool, client) as (node, _):
        await node.observe(max_age=0)
        pool.up = False
        started = time.monotonic()
        with pytest.raises(NodeUnreachable, match="has not answered since"):
            await asyncio.wait_for(node.observe(max_age=0), 5)
        assert time.monotonic() - started < 2
        assert pool.dropped >= 1  # the hung liveness connection was dropped


async def test_no_cached_view_is_served_while_the_node_is_down() -> None:
    pool, client = SwitchPool(), HangingClient()
    async with running(pool, client) as (node, probe):
        await node.observe(max_age=0)
        assert (await node.observe(max_age=60)).inventory.node == "pve1"  # cached while up
        pool.up = False
        await asyncio.wait_for(probe.wait_until(False), 5)
        with pytest.raises(NodeUnreachable):
            await node.observe(max_age=60)
        assert client.calls == 1
        pool.up = True
        await asyncio.wait_for(probe.wait_until(True), 5)
        assert (await node.observe(max_age=60)).inventory.node == "pve1"


async def test_a_stuck_probe_counts_as_down() -> None:
    pool, client = SwitchPool(), HangingClient()
    node, probe = handle(pool, client)
    await probe.ping()
    assert probe.state().alive is True
    probe._last_result -= FAST.stale_after_s + 1  # no verdict for longer than the bound
    assert probe.state().alive is False
    with pytest.raises(NodeUnreachable, match="no liveness verdict"):
        await node.observe(max_age=60)


async def test_work_on_a_node_that_goes_down_is_cancelled_and_reported() -> None:
    cancelled = asyncio.Event()

    async def hanging_action() -> None:
        try:
            await asyncio.sleep(3600)  # e.g. a `qm` call on a node that froze
        except asyncio.CancelledError:
            cancelled.set()
            raise

    pool = SwitchPool()
    async with running(pool, HangingClient()) as (node, _):
        work = asyncio.create_task(node.unless_down(hanging_action()))
        pool.up = False
        with pytest.raises(NodeUnreachable):
            await asyncio.wait_for(work, 5)
        await asyncio.wait_for(cancelled.wait(), 1)
