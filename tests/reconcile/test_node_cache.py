"""The per-node inventory cache: concurrent readers share one remote call, a change on the node is never hidden
by a view fetched before it, and cached views are served within their age."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.proxmox.inventory import NodeInventory
from proxnix.reconcile.node_directory import NodeHandle


class CountingClient:
    """Stands in for ProxmoxClient.inventory: counts calls; each call waits for `release`."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def inventory(self) -> NodeInventory:
        self.calls += 1
        number = self.calls
        await self.release.wait()
        return NodeInventory(node=f"call-{number}", vms={}, cluster={})


def handle(client: CountingClient) -> NodeHandle:
    spec = ProxmoxNodeSpec.model_validate({"host": "127.0.0.1", "credentialsSecretRef": {"name": "s"}})
    return NodeHandle(
        key="ns/pve1", spec=spec, node_name="pve1", pool=cast(Any, None), client=cast(Any, client)
    )


async def test_concurrent_readers_share_one_call() -> None:
    client = CountingClient()
    node = handle(client)
    readers = [asyncio.create_task(node.observe(max_age=0)) for _ in range(20)]
    await asyncio.sleep(0)
    client.release.set()
    seen = await asyncio.gather(*readers)
    assert client.calls == 1
    assert {s.inventory.node for s in seen} == {"call-1"}


async def test_cached_view_is_served_within_its_age() -> None:
    client = CountingClient()
    client.release.set()
    node = handle(client)
    first = await node.observe(max_age=0)
    again = await node.observe(max_age=30)
    assert again is first
    assert client.calls == 1
    fresh = await node.observe(max_age=0)
    assert fresh.inventory.node == "call-2"


async def test_a_change_during_a_fetch_forces_a_new_fetch() -> None:
    client = CountingClient()
    node = handle(client)
    before = asyncio.create_task(node.observe(max_age=0))
    await asyncio.sleep(0)
    node.invalidate()  # the operator changed something on the node while that fetch ran
    after = asyncio.create_task(node.observe(max_age=0))
    await asyncio.sleep(0)
    client.release.set()
    assert (await before).inventory.node == "call-1"
    assert (await after).inventory.node == "call-2"
    # The pre-change view was not cached: a cached read gets the post-change one.
    assert (await node.observe(max_age=60)).inventory.node == "call-2"
