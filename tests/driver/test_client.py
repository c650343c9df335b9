"""The node client against a simulated node: lifecycle, batched inventory, retries, permanent errors, ownership."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import unquote

import pytest

from proxnix.adapters.ssh_pool import PoolSettings, SshPool
from proxnix.proxmox.definition import CloudInitDefinition
from proxnix.proxmox.dialect import QmDialect
from proxnix.proxmox.errors import (
    CommandFailed,
    DiskShrinkRefused,
    LockTimeout,
    NotOwned,
    ProtectionEnabled,
    VmidConflict,
    VmNotFound,
)
from tests.driver.conftest import (
    FAST_RETRY,
    Sim,
    SimNode,
    definition,
    owner_for,
    qm_calls,
    remote_process_exists,
)
from tests.driver.tcp_proxy import TcpProxy
from tests.support.proxmox_client import ProxmoxClient, RetryPolicy

pytestmark = pytest.mark.e2e

SHA = "ab" * 32


async def test_lifecycle(sim: Sim, client: ProxmoxClient) -> None:
    vmid = sim.vmid()
    owner = owner_for("web")
    config = await client.create_vm(definition(vmid, "web", tags=("tier1",)), owner, image_sha256=SHA)
    assert config.tags == ["nix-abababababab", "proxnix", "tier1"]
    assert config.agent_enabled
    assert config.values["serial0"] == "socket"
    assert (await client.create_vm(definition(vmid, "web"), owner)).digest == config.digest  # idempotent

    await client.update_vm(vmid, owner.uid, {"cores": 2, "memory": 1024})
    await client.start_vm(vmid, owner.uid)
    await client.start_vm(vmid, owner.uid)  # already running: fine
    await client.update_vm(vmid, owner.uid, {"cores": 4})
    inventory = await client.inventory()
    vm = inventory.vms[vmid]
    assert vm.ownership.owned_by(owner.uid)
    assert vm.power_state == "running"
    assert vm.pending_keys == ["cores"]
    observed = vm.to_observed()
    assert (observed.cores, observed.memory_mib, observed.protection) == (4, 1024, False)
    assert (await client.vm_config(vmid, current=True)).cores() == 2
    assert (await client.pending_changes(vmid))["cores"].pending == "4"

    await client.stop_vm(vmid, owner.uid)
    await client.stop_vm(vmid, owner.uid)  # stopping a stopped VM is silent
    status = await client.vm_status(vmid)
    assert status.power_state == "stopped"
    assert await client.destroy_vm(vmid, owner.uid) is True
    assert await client.destroy_vm(vmid, owner.uid) is False  # already gone
    with pytest.raises(VmNotFound):
        await client.read_config(vmid)


async def test_inventory_is_one_remote_call(sim: Sim, client: ProxmoxClient) -> None:
    owners = {sim.vmid(): owner_for(f"inv{i}") for i in range(3)}
    await asyncio.gather(
        *(client.create_vm(definition(v, f"inv{i}"), o) for i, (v, o) in enumerate(owners.items()))
    )
    sessions_before = len(sim.sessions("pve1"))
    since = time.time()
    inventory = await client.inventory()
    calls = [c for c in sim.calls("pve1") if c.ts >= since]
    assert [c.command for c in calls] == ["pvesh get /cluster/resources --type vm --output-format json"]
    assert len(sim.sessions("pve1")) == sessions_before + 1
    for vmid, owner in owners.items():
        assert inventory.vms[vmid].ownership.owned_by(owner.uid)
        assert inventory.vms[vmid].power_state == "stopped"
        assert inventory.vmid_holder(vmid) == "pve1"
    assert inventory.resources_error == ""


async def test_lock_timeouts_are_retried_and_succeed(sim: Sim, client: ProxmoxClient) -> None:
    vmid, owner = sim.vmid(), owner_for("locky")
    await client.create_vm(definition(vmid, "locky"), owner)
    sim.fault(f'cmd="qm set {vmid}" locktimeout=0.1 count=2', node="pve1")
    since = time.time()
    await client.update_vm(vmid, owner.uid, {"memory": 768})
    sets = qm_calls(sim, "pve1", "qm", "set", str(vmid), since=since)
    assert [c.fault is not None for c in sets] == [True, True, False]
    assert (await client.read_config(vmid)).memory_mib() == 768


async def test_retries_are_bounded(sim: Sim, client: ProxmoxClient) -> None:
    vmid, owner = sim.vmid(), owner_for("stuck")
    await client.create_vm(definition(vmid, "stuck"), owner)
    sim.fault(f'cmd="qm start {vmid}" locktimeout=0.05', node="pve1")
    since = time.time()
    with pytest.raises(LockTimeout):
        await client.start_vm(vmid, owner.uid)
    assert len(qm_calls(sim, "pve1", "qm", "start", str(vmid), since=since)) == FAST_RETRY.attempts


async def test_permanent_errors_are_reported_not_retried(sim: Sim, client: ProxmoxClient) -> None:
    vmid = sim.vmid()
    other = ProxmoxClient(client.pool, "pve1", retry=FAST_RETRY)  # same node, different owner
    await client.create_vm(definition(vmid, "first"), owner_for("first"))
    since = time.time()
    with pytest.raises(VmidConflict):
        await other.create_vm(definition(vmid, "second"), owner_for("second"))
    assert len(qm_calls(sim, "pve1", "qm", "create", since=since)) == 1

    owner = owner_for("boom")
    vmid2 = sim.vmid()
    await client.create_vm(definition(vmid2, "boom"), owner)
    sim.fault(f'cmd="qm start {vmid2}" fail="kvm: failed to start: simulated hardware fault"', node="pve1")
    since = time.time()
    with pytest.raises(CommandFailed, match="simulated hardware fault"):
        await client.start_vm(vmid2, owner.uid)
    assert len(qm_calls(sim, "pve1", "qm", "start", since=since)) == 1


async def test_vmid_used_on_another_node_is_a_conflict(sim: Sim, client: ProxmoxClient) -> None:
    vmid = sim.vmid()
    pve2 = sim.nodes["pve2"]
    async with SshPool(pve2.target(), pve2.credentials()) as pool2:
        await ProxmoxClient(pool2, "pve2", retry=FAST_RETRY).create_vm(
            definition(vmid, "elsewhere"), owner_for("x")
        )
    with pytest.raises(VmidConflict) as info:
        await client.create_vm(definition(vmid, "here"), owner_for("here"))
    assert info.value.other_node == "pve2"
    inventory = await client.inventory()
    assert vmid not in inventory.vms
    assert inventory.vmid_holder(vmid) == "pve2"


async def test_dropped_connection_mid_command_is_retried(sim: Sim, node: SimNode) -> None:
    vmid, owner = sim.vmid(), owner_for("dropme")
    proxy = await TcpProxy(node.host, node.port).start()
    creds = node.credentials(known_hosts=node.known_hosts_for_port(proxy.port))
    async with SshPool(node.target(proxy.port), creds, PoolSettings(reconnect_initial=0.05)) as pool:
        client = ProxmoxClient(pool, node.name, retry=FAST_RETRY)
        await client.create_vm(definition(vmid, "dropme"), owner)
        sim.fault(f'cmd="qm set {vmid}" hang=3 count=1', node="pve1")
        since = time.time()
        update = asyncio.create_task(client.update_vm(vmid, owner.uid, {"cores": 3}))
        deadline = time.monotonic() + 15
        while not await remote_process_exists(f"qm set {vmid} "):  # the qm set is hanging on the node
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        proxy.drop_all()
        await update
        assert (await client.read_config(vmid)).cores() == 3
        assert pool.stats.connections_opened == 2
        assert len(qm_calls(sim, "pve1", "qm", "set", str(vmid), since=since)) >= 1
    await proxy.close()


async def test_ownership_is_enforced_by_the_driver(sim: Sim, client: ProxmoxClient) -> None:
    foreign, theirs = sim.vmid(), sim.vmid()
    # A VM made by hand (no marker) and one owned by another ProxmoxVM.
    await client.pool.run(["qm", "create", str(foreign), "--name", "handmade", "--tags", "proxnix"])
    other = owner_for("other")
    await client.create_vm(definition(theirs, "other"), other)
    me = owner_for("me")
    since = time.time()
    for vmid in (foreign, theirs):
        with pytest.raises(NotOwned):
            await client.update_vm(vmid, me.uid, {"cores": 2})
        with pytest.raises(NotOwned):
            await client.start_vm(vmid, me.uid)
        with pytest.raises(NotOwned):
            await client.destroy_vm(vmid, me.uid)
        with pytest.raises(NotOwned):
            await client.resize_disk(vmid, me.uid, "scsi0", 10)
    with pytest.raises(NotOwned):
        await client.update_vm(theirs, other.uid, {"description": "just notes"})
    with pytest.raises(NotOwned):
        await client.update_vm(theirs, other.uid, {"tags": "web"})
    assert [c.command for c in sim.calls("pve1") if c.ts >= since] == []  # refused before any qm call
    inventory = await client.inventory()
    assert inventory.vms[foreign].ownership.legacy
    assert not inventory.vms[foreign].ownership.managed


async def test_protection_and_disks(sim: Sim, client: ProxmoxClient) -> None:
    vmid, owner = sim.vmid(), owner_for("disky")
    await client.create_vm(definition(vmid, "disky", protection=True), owner)
    await client.pool.run(["qm", "set", str(vmid), "--scsi0", "local-lvm:4"])  # a 4 GiB disk
    since = time.time()
    with pytest.raises(ProtectionEnabled):
        await client.destroy_vm(vmid, owner.uid)
    assert qm_calls(sim, "pve1", "qm", "destroy", since=since) == []
    assert await client.resize_disk(vmid, owner.uid, "scsi0", 4) is False  # same size: no call
    with pytest.raises(DiskShrinkRefused):
        await client.resize_disk(vmid, owner.uid, "scsi0", 2)
    assert qm_calls(sim, "pve1", "qm", "disk", "resize", since=since) == []
    assert await client.resize_disk(vmid, owner.uid, "scsi0", 6) is True
    assert (await client.read_config(vmid)).disk_size_bytes("scsi0") == 6 * 1024**3
    await client.set_protection(vmid, owner.uid, False)
    assert await client.destroy_vm(vmid, owner.uid) is True


async def test_marker_update_keeps_user_notes(sim: Sim, client: ProxmoxClient) -> None:
    vmid, owner = sim.vmid(), owner_for("notes")
    await client.create_vm(definition(vmid, "notes"), owner, image_sha256=SHA)
    await client.update_marker(vmid, owner, "cd" * 32, extra_tags=["web"])
    config = await client.read_config(vmid)
    assert config.tags == ["nix-cdcdcdcdcdcd", "proxnix", "web"]
    assert f"proxnix.io/image-sha256: {'cd' * 32}" in config.description
    await client.set_tags(vmid, owner.uid, ["db"], image_sha256="cd" * 32)
    assert (await client.read_config(vmid)).tags == ["db", "nix-cdcdcdcdcdcd", "proxnix"]


async def test_reads_and_cluster(sim: Sim, client: ProxmoxClient) -> None:
    nodes = await client.cluster_nodes()
    assert {n.node for n in nodes} == set(sim.nodes)
    assert await client.next_vmid() >= 100
    vmid, owner = sim.vmid(), owner_for("agent")
    await client.create_vm(definition(vmid, "agent"), owner)
    await client.start_vm(vmid, owner.uid)
    entries = {e.vmid: e for e in await client.list_vms()}
    assert entries[vmid].status == "running"
    assert any(g.vmid == vmid for g in await client.cluster_resources())
    interfaces = await client.guest_interfaces(vmid)
    assert any(i.addresses for i in interfaces)
    await client.stop_vm(vmid, owner.uid)


async def test_retry_policy_delays_grow() -> None:
    policy = RetryPolicy(initial_delay=1, max_delay=5, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_dialect_for_version() -> None:
    assert QmDialect.for_version("8.3.0").legacy_disk_commands is False
    assert QmDialect.for_version("7.3-1").legacy_disk_commands is False
    assert QmDialect.for_version("7.2-4").legacy_disk_commands is True
    assert QmDialect.for_version("garbage").legacy_disk_commands is False


async def test_legacy_disk_commands(sim: Sim, client: ProxmoxClient) -> None:
    legacy = ProxmoxClient(client.pool, "pve1", retry=FAST_RETRY, dialect=QmDialect.for_version("7.2"))
    vmid, owner = sim.vmid(), owner_for("legacy")
    await legacy.create_vm(definition(vmid, "legacy"), owner)
    await legacy.pool.run(["qm", "set", str(vmid), "--scsi0", "local-lvm:1"])
    since = time.time()
    assert await legacy.resize_disk(vmid, owner.uid, "scsi0", 2) is True
    assert [c.argv[:2] for c in sim.calls("pve1") if c.ts >= since] == [("qm", "resize")]


async def test_create_with_cloud_init_keys_from_stdin(sim: Sim, client: ProxmoxClient) -> None:
    vmid, owner = sim.vmid(), owner_for("ci")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@laptop"
    cloud_init = CloudInitDefinition(
        storage="local-lvm", user="ops", ssh_authorized_keys=(key,), ipconfig0="ip=dhcp"
    )
    config = await client.create_vm(definition(vmid, "ci", cloud_init=cloud_init), owner)
    assert config.values["ciuser"] == "ops"
    assert config.values["ipconfig0"] == "ip=dhcp"
    assert unquote(config.values["sshkeys"]).strip() == key
    assert "cloudinit" in config.values["ide2"]
