"""Runtime state of VMs (what QEMU processes would tell): running or paused, pid, start time.

One JSON file per VM under `DIR/run/`; a missing file means stopped. VMIDs are unique cluster-wide, so the file
also names the node the VM runs on. Written only while holding the VM's config lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from pvesim.layout import Layout


class RunState:
    def __init__(self, node: str, status: str, pid: int, started: float) -> None:
        self.node = node
        self.status = status  # running | paused
        self.pid = pid
        self.started = started

    def to_dict(self) -> dict[str, object]:
        return {"node": self.node, "status": self.status, "pid": self.pid, "started": self.started}

    @property
    def uptime(self) -> int:
        return max(0, int(time.time() - self.started))


def get(layout: Layout, vmid: int, node: str | None = None) -> RunState | None:
    try:
        data = json.loads(layout.runtime_path(vmid).read_text())
    except (FileNotFoundError, ValueError):
        return None
    state = RunState(**data)
    if node is not None and state.node != node:
        return None
    return state


def put(layout: Layout, vmid: int, state: RunState) -> None:
    path = layout.runtime_path(vmid)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(state.to_dict()))
    os.replace(tmp, path)


def clear(layout: Layout, vmid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        layout.runtime_path(vmid).unlink()


def new_pid(vmid: int) -> int:
    return 1000 + (int.from_bytes(os.urandom(3), "big") % 4_000_000)


def start(layout: Layout, vmid: int, node: str) -> RunState:
    state = RunState(node=node, status="running", pid=new_pid(vmid), started=time.time())
    put(layout, vmid, state)
    return state
