"""`qm list`: the node's VMs, one row each (pve-cli-facts §1).

Header `"%10s %-20s %-10s %-10s %12s %-10s"`; rows VMID, NAME, STATUS, MEM(MB), BOOTDISK(GB), PID. Names are never
truncated (long ones shift the later columns) and the default name `VM <id>` contains a space, so rows are parsed
from both ends: the VMID from the left, the four fixed fields from the right, the name is what lies between.
No VMs → no output at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxnix.proxmox.parsing import fail, output_lines

COMMAND = "qm list"
_HEADER = re.compile(r"^\s*VMID\s+NAME\s+STATUS\s+MEM\(MB\)\s+BOOTDISK\(GB\)\s+PID\s*$")
_ROW = re.compile(
    r"^\s*(?P<vmid>[1-9][0-9]{2,8}) (?P<name>.*?)\s+(?P<status>[a-z]+)\s+(?P<mem>[0-9]+(?:\.[0-9]+)?)"
    r"\s+(?P<disk>[0-9]+\.[0-9]+)\s+(?P<pid>[0-9]+)\s*$"
)


@dataclass(frozen=True)
class VmListEntry:
    """One `qm list` row."""

    vmid: int
    name: str
    status: str
    memory_mib: float
    boot_disk_gib: float
    pid: int


def parse_qm_list(text: str, *, command: str = COMMAND) -> list[VmListEntry]:
    lines = [line for line in output_lines(text) if line.strip()]
    if not lines:
        return []
    if not _HEADER.match(lines[0]):
        fail(command, "expected the header 'VMID NAME STATUS MEM(MB) BOOTDISK(GB) PID'", lines[0])
    entries: list[VmListEntry] = []
    seen: set[int] = set()
    for line in lines[1:]:
        m = _ROW.match(line)
        if not m or not m.group("name").strip():
            fail(command, "expected 'VMID NAME STATUS MEM(MB) BOOTDISK(GB) PID'", line)
        vmid = int(m.group("vmid"))
        if vmid in seen:
            fail(command, f"VMID {vmid} listed twice", line)
        seen.add(vmid)
        entries.append(
            VmListEntry(
                vmid=vmid,
                name=m.group("name").strip(),
                status=m.group("status"),
                memory_mib=float(m.group("mem")),
                boot_disk_gib=float(m.group("disk")),
                pid=int(m.group("pid")),
            )
        )
    return entries
