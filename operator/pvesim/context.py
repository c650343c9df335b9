"""The context of one qm/pvesh invocation: node, settings, output streams, the task mode, VM config locks and
the faults that fired for this call.

Task mode (`with ctx.task():`) mirrors a foreground worker: the task log — including messages the tool would
write on stderr, such as `trying to acquire lock...` — goes to stdout, and a failure becomes a `TaskError`
(stderr, newlines as spaces, exit 255).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, TextIO

from pvesim import locks
from pvesim.errors import PveError, TaskError
from pvesim.faults import Rule
from pvesim.layout import Layout
from pvesim.vmstore import VmStore

if TYPE_CHECKING:
    from pvesim.storage import NodeStorage


class Ctx:
    def __init__(
        self,
        layout: Layout,
        node: str,
        out: TextIO | None = None,
        err: TextIO | None = None,
        fired: list[Rule] | None = None,
    ) -> None:
        cluster = layout.read_cluster()
        self.layout = layout
        self.node = node
        self.nodes: list[str] = list(cluster["nodes"])
        self.settings = layout.settings(node, cluster)
        self.cluster = cluster
        self.out: TextIO = out or sys.stdout
        self.err: TextIO = err or sys.stderr
        self.log: TextIO = self.err
        self.in_task = False
        self.fired = fired or []
        self.store = VmStore(layout, node, self.nodes)

    @property
    def modern(self) -> bool:
        """PVE 8.1+ behaviour (BC:24:11 MACs, memory as a property string)."""
        return self.settings.at_least("8.1")

    @cached_property
    def storage(self) -> NodeStorage:
        from pvesim.storage import NodeStorage  # lazily: most commands never touch a storage

        return NodeStorage(self.layout, self.node, self.settings, self)

    def fault(self, action: str) -> Rule | None:
        for rule in self.fired:
            if rule.action == action:
                return rule
        return None

    def check_quorum(self) -> None:
        if self.fault("noquorum"):
            raise PveError("cluster not ready - no quorum?")

    @contextmanager
    def task(self) -> Iterator[None]:
        previous = self.log
        self.log = self.out
        self.in_task = True
        try:
            yield
        except PveError as exc:
            self.out.flush()
            raise TaskError(exc.message) from exc
        finally:
            self.log = previous
            self.in_task = False

    @contextmanager
    def lock_vm(self, vmid: int, timeout: float | None = None, placeholder: bool = False) -> Iterator[None]:
        """The per-VMID config flock (`/var/lock/qemu-server/lock-<vmid>.conf`) with the node's timeout.
        A `slow` fault makes the command hold it longer (not while writing a create placeholder)."""
        timeout = self.settings.lock_timeout if timeout is None else timeout
        display = f"/var/lock/qemu-server/lock-{vmid}.conf"
        forced = self.fault("locktimeout")
        if forced is not None:
            self.log.write("trying to acquire lock...")
            self.log.flush()
            time.sleep(float(forced.arg) if forced.arg is not None else timeout)
            raise locks.timeout_error(display)
        path = self.layout.lock_dir(self.node) / f"lock-{vmid}.conf"
        with locks.flock(path, display, timeout, self.log):
            slow = None if placeholder else self.fault("slow")
            if slow is not None and slow.arg is not None:
                time.sleep(float(slow.arg))
            yield
