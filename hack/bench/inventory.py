#!/usr/bin/env python3
"""Benchmark of one full sync: the driver's batched inventory vs. the original's `qm list` + `qm config` per VM.

    .venv/bin/python hack/bench/inventory.py [--nodes 3] [--vms 300] [--latency 0.5] [--sessions 4] [--keep DIR]

Starts a simulated cluster (`pvesim up`, latency 0), creates the VMs spread over the nodes through the driver
(ownership marker, varied shapes, some running, some with pending changes) in parallel, then sets the latency every
qm/pvesh call pays (`pvesim tune latency=...`, the Perl start-up cost of a real node) and measures one sync of
every node, both ways, over the same SSH pools (`--sessions` concurrent commands per node, the ProxmoxNode default):
- driver: `ProxmoxClient.inventory()` per node (one SSH exec: one pvesh + cat of the config files);
- per-vm: `qm list`, then `qm config <vmid>` for every VM (the original tool's method).
Remote calls are counted from pvesim's call log (qm/pvesh invocations) and SSH sessions from its session log. Both
methods must see the same VMs with the same shape. The last line is always
`inventory: driver <calls> calls <seconds> s; per-vm <calls> calls <seconds> s; speedup <ratio>x`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT))

from proxnix.adapters.ssh_pool import PoolSettings, SshCredentials, SshPool, SshTarget  # noqa: E402
from proxnix.proxmox.definition import VmDefinition  # noqa: E402
from proxnix.proxmox.ownership import Owner  # noqa: E402
from proxnix.proxmox.vm_config import VmConfig  # noqa: E402
from pvesim import calllog  # noqa: E402
from tests.support.proxmox_client import ProxmoxClient  # noqa: E402

PVESIM = str(Path(sys.executable).with_name("pvesim"))


def pvesim(*args: str) -> str:
    done = subprocess.run([PVESIM, *args], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pvesim {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def pool_for(node: dict[str, object], sessions: int) -> SshPool:
    creds = SshCredentials(
        private_key=Path(str(node["identityFile"])).read_bytes(),
        known_hosts=Path(str(node["knownHostsFile"])).read_text(),
    )
    target = SshTarget(str(node["host"]), int(str(node["port"])), str(node["user"]), str(node["name"]))
    return SshPool(target, creds, PoolSettings(max_sessions=sessions, command_timeout=600))


async def create_vms(clients: list[ProxmoxClient], vms: int) -> None:
    """VMs spread round-robin over the nodes; every 10th running, every 7th running with a pending change."""

    async def one(i: int) -> None:
        client = clients[i % len(clients)]
        vmid = 1000 + i
        owner = Owner(namespace="bench", name=f"vm-{i}", uid=str(uuid.uuid4()))
        definition = VmDefinition(
            vmid=vmid,
            name=f"bench-vm-{i}",
            cores=1 + i % 4,
            sockets=1,
            memory_mib=512 * (1 + i % 8),
            scsihw="virtio-scsi-pci",
            disk_slot="scsi0",
            disk_storage="local-lvm",
            disk_size_gib=None,
            bridge="vmbr0",
            net_model="virtio",
            onboot=True,
            protection=i % 11 == 0,
            tags=("bench",),
        )
        await client.create_vm(definition, owner, image_sha256=f"{i:064x}")
        if i % 10 == 0 or i % 7 == 0:
            await client.start_vm(vmid, owner.uid)
        if i % 7 == 0:
            await client.update_vm(vmid, owner.uid, {"cores": 8})

    await asyncio.gather(*(one(i) for i in range(vms)))


def shape(config: VmConfig) -> tuple[str, int, int, int, list[str]]:
    return (config.name, config.cores(), config.sockets(), config.memory_mib(), config.tags)


async def sync_driver(clients: list[ProxmoxClient]) -> dict[int, tuple[str, int, int, int, list[str]]]:
    inventories = await asyncio.gather(*(c.inventory() for c in clients))
    return {
        vmid: shape(vm.config) for inv in inventories for vmid, vm in inv.vms.items() if vm.config is not None
    }


async def sync_per_vm(clients: list[ProxmoxClient]) -> dict[int, tuple[str, int, int, int, list[str]]]:
    async def node(client: ProxmoxClient) -> dict[int, tuple[str, int, int, int, list[str]]]:
        entries = await client.list_vms()
        configs = await asyncio.gather(*(client.vm_config(e.vmid) for e in entries))
        return {e.vmid: shape(c) for e, c in zip(entries, configs, strict=True)}

    result: dict[int, tuple[str, int, int, int, list[str]]] = {}
    for part in await asyncio.gather(*(node(c) for c in clients)):
        result.update(part)
    return result


Shapes = dict[int, tuple[str, int, int, int, list[str]]]


async def measure(
    name: str,
    state: Path,
    clients: list[ProxmoxClient],
    sync: Callable[[list[ProxmoxClient]], Awaitable[Shapes]],
) -> tuple[int, int, float, Shapes]:
    calls_before = len(calllog.read(state))
    sessions_before = len(calllog.read_sessions(state))
    started = time.monotonic()
    seen = await sync(clients)
    seconds = time.monotonic() - started
    calls = len(calllog.read(state)) - calls_before
    sessions = len(calllog.read_sessions(state)) - sessions_before
    print(f"{name:7s}: {len(seen)} VMs, {calls} qm/pvesh calls, {sessions} SSH sessions, {seconds:.2f} s")
    return calls, sessions, seconds, seen


async def run(args: argparse.Namespace, state: Path) -> str:
    info = json.loads(pvesim("up", "--nodes", str(args.nodes), "--dir", str(state)))
    nodes = info["nodes"]
    setup_pools = [pool_for(n, 16) for n in nodes]
    try:
        started = time.monotonic()
        await create_vms(
            [ProxmoxClient(p, str(n["name"])) for p, n in zip(setup_pools, nodes, strict=True)], args.vms
        )
        print(f"setup  : created {args.vms} VMs on {args.nodes} nodes in {time.monotonic() - started:.1f} s")
    finally:
        await asyncio.gather(*(p.close() for p in setup_pools))
    pvesim("tune", "--dir", str(state), f"latency={args.latency}")
    print(f"latency: {args.latency} s per qm/pvesh call; {args.sessions} SSH sessions per node")

    pools = [pool_for(n, args.sessions) for n in nodes]
    clients = [ProxmoxClient(p, str(n["name"])) for p, n in zip(pools, nodes, strict=True)]
    try:
        await asyncio.gather(*(p.check() for p in pools))  # connections up before timing, for both methods
        d_calls, d_sessions, d_seconds, d_seen = await measure("driver", state, clients, sync_driver)
        p_calls, _, p_seconds, p_seen = await measure("per-vm", state, clients, sync_per_vm)
    finally:
        await asyncio.gather(*(p.close() for p in pools))
    if d_seen != p_seen or len(d_seen) != args.vms:
        raise SystemExit(f"the two methods disagree: {len(d_seen)} vs {len(p_seen)} VMs")
    if d_calls != args.nodes:
        raise SystemExit(f"expected one remote call per node, got {d_calls}")
    print(
        f"check  : both methods see the same {len(d_seen)} VMs and shapes; driver {d_sessions} SSH sessions"
    )
    return (
        f"inventory: driver {d_calls} calls {d_seconds:.2f} s; per-vm {p_calls} calls {p_seconds:.2f} s; "
        f"speedup {p_seconds / d_seconds:.1f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--vms", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--sessions", type=int, default=4, help="SSH pool size per node (maxSessions)")
    parser.add_argument(
        "--keep", default=None, help="state folder to use and keep (default: a temporary one)"
    )
    args = parser.parse_args()
    state = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pvesim-bench-"))
    try:
        line = asyncio.run(run(args, state))
    finally:
        subprocess.run([PVESIM, "down", "--dir", str(state)], capture_output=True, timeout=60, check=False)
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
