"""Driver tests against a running simulated cluster (`pvesim up`), over real SSH with host-key checking.

Only pvesim's public command line (`pvesim up/down/fault/tune/node`) and its call-log reader are used: the driver
must work the same against a real Proxmox node. One cluster per test session; every test takes fresh VMIDs and
leaves no faults behind.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from proxnix.adapters.ssh_pool import PoolSettings, SshCredentials, SshPool, SshTarget
from proxnix.proxmox.definition import VmDefinition
from proxnix.proxmox.ownership import Owner
from pvesim import calllog
from tests.support.proxmox_client import ProxmoxClient, RetryPolicy

PVESIM = str(Path(sys.executable).with_name("pvesim"))
FAST_RETRY = RetryPolicy(attempts=4, initial_delay=0.05, max_delay=0.2)


@dataclass(frozen=True)
class SimNode:
    name: str
    host: str
    port: int
    user: str
    identity_file: str
    known_hosts_file: str

    def credentials(self, **overrides: object) -> SshCredentials:
        values: dict[str, object] = {
            "private_key": Path(self.identity_file).read_bytes(),
            "known_hosts": Path(self.known_hosts_file).read_text(),
        }
        values.update(overrides)
        return SshCredentials(**values)  # type: ignore[arg-type]

    def target(self, port: int | None = None) -> SshTarget:
        return SshTarget(self.host, port or self.port, self.user, self.name)

    def known_hosts_line(self) -> str:
        """This node's known_hosts line (pvesim writes one line per node, naming its port)."""
        for line in Path(self.known_hosts_file).read_text().splitlines():
            if f":{self.port}" in line.split(" ", 1)[0]:
                return line
        raise AssertionError(f"no known_hosts line for port {self.port}")

    def known_hosts_for_port(self, port: int) -> str:
        """The node's key as a known_hosts line for another port (a proxy in front of the node)."""
        key = self.known_hosts_line().split(" ", 1)[1]
        return f"[{self.host}]:{port} {key}\n"


@dataclass
class Sim:
    """A running pvesim cluster: its nodes, its CLI, its call log."""

    dir: Path
    nodes: dict[str, SimNode]
    _vmids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [PVESIM, *args, "--dir", str(self.dir)], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"pvesim {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def fault(self, spec: str, node: str | None = None) -> None:
        self.cli("fault", *(["--node", node] if node else []), spec)

    def clear_faults(self) -> None:
        self.cli("fault", "--clear")

    def tune(self, *values: str, node: str | None = None) -> None:
        self.cli("tune", *(["--node", node] if node else []), *values)

    def calls(self, node: str | None = None) -> list[calllog.Call]:
        return calllog.read(self.dir, node)

    def sessions(self, node: str | None = None) -> list[calllog.Session]:
        return calllog.read_sessions(self.dir, node)

    def vmid(self) -> int:
        return next(self._vmids)


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    state = tmp_path_factory.mktemp("pvesim")
    env = {**os.environ}
    up = subprocess.run(
        [
            PVESIM,
            "up",
            "--nodes",
            "2",
            "--dir",
            str(state),
            "--set",
            "lock_timeout=0.5",
            "--set",
            "create_lock_timeout=0.5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if up.returncode != 0:
        raise AssertionError(f"pvesim up failed: {up.stderr}")
    info = json.loads(up.stdout)
    nodes = {
        n["name"]: SimNode(n["name"], n["host"], n["port"], n["user"], n["identityFile"], n["knownHostsFile"])
        for n in info["nodes"]
    }
    try:
        yield Sim(dir=Path(info["dir"]), nodes=nodes)
    finally:
        subprocess.run([PVESIM, "down", "--dir", str(state)], capture_output=True, timeout=60, check=False)


@pytest.fixture(autouse=True)
def _no_faults_left(sim: Sim) -> Iterator[None]:
    yield
    sim.clear_faults()


@pytest.fixture
def node(sim: Sim) -> SimNode:
    return sim.nodes["pve1"]


@pytest.fixture
async def pool(node: SimNode) -> AsyncIterator[SshPool]:
    async with SshPool(
        node.target(), node.credentials(), PoolSettings(max_sessions=4, command_timeout=30)
    ) as p:
        yield p


@pytest.fixture
def client(pool: SshPool, node: SimNode) -> ProxmoxClient:
    return ProxmoxClient(pool, node.name, retry=FAST_RETRY, command_timeout_s=30)


def owner_for(name: str) -> Owner:
    import uuid

    return Owner(namespace="default", name=name, uid=str(uuid.uuid4()))


def definition(vmid: int, name: str = "vm", **overrides: object) -> VmDefinition:
    values: dict[str, object] = {
        "vmid": vmid,
        "name": name,
        "cores": 1,
        "sockets": 1,
        "memory_mib": 512,
        "scsihw": "virtio-scsi-pci",
        "disk_slot": "scsi0",
        "disk_storage": "local-lvm",
        "disk_size_gib": None,
        "bridge": "vmbr0",
        "net_model": "virtio",
        "onboot": True,
        "protection": False,
    }
    values.update(overrides)
    return VmDefinition(**values)  # type: ignore[arg-type]


async def remote_process_exists(pattern: str) -> bool:
    """pvesim's SSH sessions run on this machine: whether a process whose command line matches is running."""
    proc = await asyncio.create_subprocess_exec(
        "pgrep", "-f", pattern, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await proc.wait() == 0


def qm_calls(sim: Sim, node: str, *words: str, since: float = 0.0) -> list[calllog.Call]:
    return [c for c in sim.calls(node) if c.ts >= since and c.startswith(*words)]
