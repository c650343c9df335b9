"""`qm status <vmid> [--verbose]` (pve-cli-facts §3): `status: running|stopped|...`; with --verbose sorted
`key: value` lines, nested hashes as `key:` followed by tab-indented children."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from proxnix.proxmox.parsing import fail, output_lines

POWER_STATES = frozenset({"running", "stopped", "paused", "prelaunch", "suspended", "unknown"})
_LINE = re.compile(r"^(\t*)([A-Za-z0-9_.\-]+):(?: (.*))?$")

NestedValue = str | Mapping[str, "NestedValue"]


@dataclass(frozen=True)
class VmStatus:
    """A VM's runtime status. `values` holds the scalar top-level keys, `nested` the tab-indented hashes."""

    status: str
    values: Mapping[str, str] = field(default_factory=dict)
    nested: Mapping[str, NestedValue] = field(default_factory=dict)

    @property
    def power_state(self) -> str:
        """`paused` when QMP says so (a paused VM shows `status: running`), else `status`."""
        qmp = self.values.get("qmpstatus", "")
        return "paused" if self.status == "running" and qmp == "paused" else self.status

    @property
    def lock(self) -> str:
        return self.values.get("lock", "")

    @property
    def pid(self) -> int | None:
        pid = self.values.get("pid", "")
        return int(pid) if pid.isdigit() else None


def parse_qm_status(text: str, *, command: str = "qm status") -> VmStatus:
    root: dict[str, NestedValue] = {}
    stack: list[dict[str, NestedValue]] = [root]
    for line in output_lines(text):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            fail(command, "expected 'key: value'", line)
        depth, key, value = len(m.group(1)), m.group(2), m.group(3)
        if depth >= len(stack):
            fail(command, "indented line without a parent key", line)
        del stack[depth + 1 :]
        parent = stack[depth]
        if value is None:
            child: dict[str, NestedValue] = {}
            parent[key] = child
            stack.append(child)
        else:
            parent[key] = value.strip()
    status = root.get("status")
    if not isinstance(status, str):
        fail(command, "no 'status:' line", text.strip().split("\n")[0] if text.strip() else "")
    if status not in POWER_STATES:
        fail(command, f"unknown status {status!r}", f"status: {status}")
    scalars = {k: v for k, v in root.items() if isinstance(v, str)}
    nested = {k: v for k, v in root.items() if not isinstance(v, str)}
    return VmStatus(status=status, values=scalars, nested=nested)
