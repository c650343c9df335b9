"""VM configs in the simulated cluster file system (pmxcfs): lookup across nodes, atomic writes, creation
without VMID collisions, removal, moving between nodes, and the `.vmlist` index.

Creation and moves run under one cluster-wide lock so that, as pmxcfs does, a `<vmid>.conf` can never exist on
two nodes at once.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from pvesim import conffile, locks
from pvesim.conffile import VmConf
from pvesim.errors import PveError, config_missing
from pvesim.layout import Layout


class VmStore:
    def __init__(self, layout: Layout, node: str, nodes: list[str]) -> None:
        self.layout = layout
        self.node = node
        self.nodes = nodes

    def locate(self, vmid: int) -> str | None:
        for node in self.nodes:
            if self.layout.conf_path(node, vmid).exists():
                return node
        return None

    def all_vms(self) -> dict[int, str]:
        result: dict[int, str] = {}
        for node in self.nodes:
            result.update({vmid: node for vmid in self.vmids(node)})
        return dict(sorted(result.items()))

    def vmids(self, node: str | None = None) -> list[int]:
        folder = self.layout.conf_dir(node or self.node)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        return sorted(int(n[:-5]) for n in names if n.endswith(".conf") and n[:-5].isdigit())

    def read(self, vmid: int, node: str | None = None) -> VmConf:
        node = node or self.node
        try:
            text = self.layout.conf_path(node, vmid).read_text()
        except FileNotFoundError:
            raise config_missing(node, vmid) from None
        return conffile.parse(text)

    def write(self, vmid: int, conf: VmConf, node: str | None = None) -> None:
        path = self.layout.conf_path(node or self.node, vmid)
        _atomic_write(path, conffile.format_conf(conf))

    def create(self, vmid: int, conf: VmConf) -> None:
        """Write a new config on the local node unless the VMID is used anywhere in the cluster."""
        with locks.plain_flock(self.layout.cluster_lock):
            owner = self.locate(vmid)
            if owner is not None:
                raise PveError(f"unable to create VM {vmid} - VM {vmid} already exists on node '{owner}'")
            self.write(vmid, conf)
            self.write_vmlist()

    def remove(self, vmid: int) -> None:
        with locks.plain_flock(self.layout.cluster_lock):
            with contextlib.suppress(FileNotFoundError):
                self.layout.conf_path(self.node, vmid).unlink()
            self.write_vmlist()

    def move(self, vmid: int, target: str) -> None:
        with locks.plain_flock(self.layout.cluster_lock):
            src = self.layout.conf_path(self.node, vmid)
            dst = self.layout.conf_path(target, vmid)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, dst)
            self.write_vmlist()

    def write_vmlist(self) -> None:
        ids = {
            str(vmid): {"node": node, "type": "qemu", "version": 1} for vmid, node in self.all_vms().items()
        }
        _atomic_write(
            self.layout.pve_dir / ".vmlist", json.dumps({"version": 1, "ids": ids}, indent=1) + "\n"
        )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
