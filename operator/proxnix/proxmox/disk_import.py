"""Outputs of disk imports and creations (pve-cli-facts §4, §5): the success line that names the new volume.

- `qm importdisk` / `qm disk import`, 6.1-8.2: `Successfully imported disk as 'unused0:local-lvm:vm-100-disk-0'`
  (some versions omit the storage prefix); qemu-server ≥ 8.2.7: `unused0: successfully imported disk 'local-lvm:...'`.
- `import-from` (qm set / qm create) and disk allocation: `scsi0: successfully created disk 'local-lvm:...,size=20G'`.
Everything else (allocation output, `transferred ... (NN.NN%)` progress) is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxnix.proxmox.parsing import fail, output_lines
from proxnix.proxmox.propstring import Drive

_OLD = re.compile(r"^Successfully imported disk as '(unused[0-9]+):(.+)'\s*$")
_NEW = re.compile(r"^(unused[0-9]+): successfully imported disk '(.+)'\s*$")
_CREATED = re.compile(r"^([a-z]+[0-9]+): successfully created disk '(.+)'\s*$")


@dataclass(frozen=True)
class ImportedDisk:
    """A disk a command created: the slot it landed in (`unused0`, `scsi0`) and its volume."""

    slot: str
    volume: str
    size_bytes: int | None = None


def _last_line(text: str) -> str:
    lines = [line for line in output_lines(text) if line.strip()]
    return lines[-1] if lines else ""


def parse_import_output(text: str, *, command: str = "qm disk import") -> ImportedDisk:
    """The imported volume from `qm importdisk` / `qm disk import` output (either version's final line)."""
    for line in reversed(output_lines(text)):
        m = _NEW.match(line) or _OLD.match(line)
        if m:
            return ImportedDisk(slot=m.group(1), volume=m.group(2))
    fail(command, "no 'successfully imported disk' line", _last_line(text))


def parse_created_disks(text: str, *, command: str = "qm set") -> list[ImportedDisk]:
    """Every `<slot>: successfully created disk '<volume>,size=...'` line (import-from, new disks)."""
    disks: list[ImportedDisk] = []
    for line in output_lines(text):
        m = _CREATED.match(line)
        if not m:
            continue
        try:
            drive = Drive.parse(m.group(2))
            size = drive.size_bytes
        except ValueError:
            fail(command, "unparseable volume in 'successfully created disk'", line)
        disks.append(ImportedDisk(slot=m.group(1), volume=drive.volume, size_bytes=size))
    return disks


def parse_import_from_output(text: str, slot: str, *, command: str = "qm set") -> ImportedDisk:
    """The disk created in `slot` by an `import-from`."""
    for disk in parse_created_disks(text, command=command):
        if disk.slot == slot:
            return disk
    fail(command, f"no '{slot}: successfully created disk' line", _last_line(text))
