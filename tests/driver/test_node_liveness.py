"""Node liveness against real sshd: a frozen node (accepts, never answers) and a refusing node are found down in
seconds; a node busy with a long command is not; a node that comes back is up again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from proxnix.adapters.node_liveness import LivenessSettings, NodeLiveness
from proxnix.adapters.ssh_pool import PoolSettings, SshPool
from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.proxmox.errors import HostKeyMismatch
from proxnix.reconcile.node_directory import NodeDirectory
from pvesim import control
from tests.driver.conftest import Sim, SimNode

pytestmark = pytest.mark.e2e

FAST = LivenessSettings(interval_s=0.5, timeout_s=1.5, retry_s=0.2, failures_to_down=2)


@pytest.fixture
async def liveness(node: SimNode) -> AsyncIterator[NodeLiveness]:
    settings = PoolSettings(
        max_sessions=1, connect_timeout=FAST.timeout_s, reconnect_initial=0.2, reconnect_max=0.5
    )
    async with SshPool(node.target(), node.credentials(), settings) as pool:
        probe = NodeLiveness(pool, node.name, FAST)
        probe.start()
        assert (await asyncio.wait_for(probe.wait_until(True), 10)).alive is True
        yield probe
        await probe.stop()


async def _seconds_until_down(probe: NodeLiveness, limit: float = 15) -> float:
    started = time.monotonic()
    state = await asyncio.wait_for(probe.wait_until(False), limit)
    assert state.alive is False
    return time.monotonic() - started


@pytest.mark.parametrize("fault", ["freeze", "down"])
async def test_a_hung_or_refusing_node_is_down_within_the_bound(
    sim: Sim, node: SimNode, liveness: NodeLiveness, fault: str
) -> None:
    toggle = control.set_node_frozen if fault == "freeze" else control.set_node_down
    toggle(sim.dir, node.name, True)
    try:
        took = await _seconds_until_down(liveness)
        assert took <= FAST.interval_s + FAST.failures_to_down * (FAST.timeout_s + FAST.retry_s) + 1
        expected = "no answer" if fault == "freeze" else "ConnectionRefused"
        assert expected in liveness.state().reason
        assert liveness.state().since  # the last time it answered
    finally:
        toggle(sim.dir, node.name, False)
    assert (await asyncio.wait_for(liveness.wait_until(True), 15)).alive is True


async def test_a_long_command_does_not_make_the_node_look_gone(node: SimNode, liveness: NodeLiveness) -> None:
    # The command pool is fully busy with a command longer than several liveness timeouts.
    async with SshPool(node.target(), node.credentials(), PoolSettings(max_sessions=1)) as busy:
        long = asyncio.create_task(busy.run("sleep 5", timeout_s=30))
        deadline = time.monotonic() + 5
        while not long.done():
            assert liveness.state().alive is True
            assert time.monotonic() < deadline + 5
            await asyncio.sleep(0.2)
        assert (await long).exit_status == 0


WRONG_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZYYDxF/QDVvk/DUah/ff0AN+WXyc7gBN7AOjTRbGmh"


async def test_a_rotated_secret_replaces_the_probe_and_a_host_key_mismatch_keeps_its_name(
    node: SimNode,
) -> None:
    spec = ProxmoxNodeSpec.model_validate(
        {"host": node.host, "port": node.port, "credentialsSecretRef": {"name": "s"}}
    )
    credentials = node.credentials()
    key = credentials.private_key
    good = {"ssh-privatekey": key, "known_hosts": credentials.known_hosts.encode()}
    bad = {"ssh-privatekey": key, "known_hosts": f"[{node.host}]:{node.port} {WRONG_KEY}\n".encode()}
    nodes = NodeDirectory(liveness=FAST)
    try:
        handle = await nodes.configure("ns", node.name, spec, good)
        assert (await handle.inventory()).node == node.name
        handle = await nodes.configure("ns", node.name, spec, bad)
        assert handle.liveness is not None
        await asyncio.wait_for(handle.liveness.wait_until(False), 10)
        with pytest.raises(HostKeyMismatch, match="has not answered since"):
            await handle.inventory(max_age=60)
        started = time.monotonic()
        handle = await asyncio.wait_for(nodes.configure("ns", node.name, spec, good), 5)
        assert (await asyncio.wait_for(handle.inventory(), 10)).node == node.name
        assert time.monotonic() - started < 10
    finally:
        await nodes.close()
