"""The state folder of a simulated cluster: where every file lives, and the settings stored there.

A state folder (``DIR``) holds everything of one cluster::

    DIR/cluster.json                 nodes, defaults and per-node settings (see `Settings`)
    DIR/cluster-info.json            the JSON document `pvesim up` printed (ports, keys)
    DIR/bin/qm, bin/pvesh            executable shims (fast start-up) put first on the session PATH
    DIR/bin/session-inner            the per-session namespace setup run by every node's ForceCommand
    DIR/ssh/                         client key pair, authorized_keys, known_hosts
    DIR/pve/                         the cluster file system (pmxcfs), mounted at /etc/pve in sessions
    DIR/pve/nodes/<node>/qemu-server/<vmid>.conf
    DIR/run/<vmid>.json              runtime state of running/paused VMs (absent = stopped)
    DIR/locks/cluster.lock           serialises VMID-space changes (create, migrate, destroy)
    DIR/nodes/<node>/                per node: sshd files, call logs, faults, storages
        sshd_config, ssh_host_ed25519_key, sshd.pid, sshd.log, session (ForceCommand)
        calls.jsonl                  one JSON line per qm/pvesh invocation
        sessions.jsonl               one JSON line per SSH session (command line as sent)
        faults.json                  active fault rules
        lock/                        flock files: lock-<vmid>.conf, pve-storage-<id>
        vz/                          storage `local` (dir), mounted at /var/lib/vz in sessions
        lvm/                         storage `local-lvm` (lvmthin): one sparse raw file per volume

Inside an SSH session of node X the paths look like a real node: /etc/pve (whole cluster), /etc/pve/qemu-server
and /etc/pve/local (node X's), /var/lib/vz (node X's `local` storage).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV_DIR = "PVESIM_DIR"
ENV_NODE = "PVESIM_NODE"

PVE_VERSIONS = ("7.0", "7.1", "7.2", "7.3", "7.4", "8.0", "8.1", "8.2", "8.3", "8.4")


DEFAULTS: dict[str, Any] = {
    "pve_version": "8.3",
    "latency": 0.0,  # added to every qm/pvesh invocation (the start-up cost of the real Perl tools)
    "lock_timeout": 10.0,  # per-VMID config flock
    "create_lock_timeout": 5.0,  # placeholder config flock of `qm create`
    "agent_delay": 0.0,  # the guest agent answers this long after start
    "agent_ping_timeout": 0.0,  # how long a failing guest-ping waits (3 s on a real node)
    "shutdown_delay": 0.0,  # how long a cooperative guest takes to power off
    "statd_lag": 0.0,  # /cluster/resources shows a new VM with status unknown this long after creation
}


class Settings:
    """Behaviour knobs of one node (cluster defaults overridden per node). All times in seconds; see DEFAULTS."""

    pve_version: str
    latency: float
    lock_timeout: float
    create_lock_timeout: float
    agent_delay: float
    agent_ping_timeout: float
    shutdown_delay: float
    statd_lag: float

    def __init__(self, **values: Any) -> None:
        for name, default in DEFAULTS.items():
            value = values.get(name, default)
            setattr(self, name, str(value) if name == "pve_version" else float(value))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        return cls(**{k: v for k, v in data.items() if k in DEFAULTS})

    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.pve_version.split(".")[:2]
        return int(major), int(minor)

    def at_least(self, version: str) -> bool:
        major, minor = version.split(".")
        return self.version_tuple() >= (int(major), int(minor))


SETTING_NAMES = tuple(DEFAULTS)


class Layout:
    """Paths of one state folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_env(cls) -> tuple[Layout, str]:
        root = os.environ.get(ENV_DIR)
        node = os.environ.get(ENV_NODE)
        if not root or not node:
            raise RuntimeError(f"pvesim: {ENV_DIR} and {ENV_NODE} must be set (run inside a pvesim session)")
        return cls(Path(root)), node

    @property
    def cluster_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def info_file(self) -> Path:
        return self.root / "cluster-info.json"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def pve_dir(self) -> Path:
        return self.root / "pve"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def cluster_lock(self) -> Path:
        return self.locks_dir / "cluster.lock"

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / node

    def conf_dir(self, node: str) -> Path:
        return self.pve_dir / "nodes" / node / "qemu-server"

    def conf_path(self, node: str, vmid: int) -> Path:
        return self.conf_dir(node) / f"{vmid}.conf"

    def lock_dir(self, node: str) -> Path:
        return self.node_dir(node) / "lock"

    def vz_dir(self, node: str) -> Path:
        return self.node_dir(node) / "vz"

    def lvm_dir(self, node: str) -> Path:
        return self.node_dir(node) / "lvm"

    def calls_file(self, node: str) -> Path:
        return self.node_dir(node) / "calls.jsonl"

    def sessions_file(self, node: str) -> Path:
        return self.node_dir(node) / "sessions.jsonl"

    def faults_file(self, node: str) -> Path:
        return self.node_dir(node) / "faults.json"

    def runtime_path(self, vmid: int) -> Path:
        return self.run_dir / f"{vmid}.json"

    # --- cluster.json ---------------------------------------------------------------------------------

    def read_cluster(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.cluster_file.read_text())
        return data

    def write_cluster(self, data: dict[str, Any]) -> None:
        tmp = self.cluster_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.cluster_file)

    def nodes(self) -> list[str]:
        return list(self.read_cluster()["nodes"])

    def settings(self, node: str, cluster: dict[str, Any] | None = None) -> Settings:
        data = cluster if cluster is not None else self.read_cluster()
        merged = dict(data.get("defaults", {}))
        merged.update(data.get("node_settings", {}).get(node, {}))
        return Settings.from_dict(merged)

    def physical_path(self, node: str, path: str) -> Path:
        """Map a path as seen inside node `node`'s sessions to the host path (only the mounted trees)."""
        if path == "/var/lib/vz" or path.startswith("/var/lib/vz/"):
            return self.vz_dir(node) / path[len("/var/lib/vz") :].lstrip("/")
        if path == "/etc/pve" or path.startswith("/etc/pve/"):
            return self.pve_dir / path[len("/etc/pve") :].lstrip("/")
        return Path(path)
