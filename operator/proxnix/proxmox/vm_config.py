"""A VM's configuration: the parser of `qm config` output, of raw `/etc/pve/qemu-server/<vmid>.conf` files and of
`pvesh get /nodes/<n>/qemu/<id>/config` JSON, and typed accessors for the fields the operator reads.

File layout (pve-cli-facts §2): description as `#` lines (percent-encoded), sorted `key: value` lines, then optional
`[PENDING]` (with `delete: a,!b`), `[special:cloudinit]` and `[<snapshot>]` sections. `qm config` prints the same
`key: value` lines (pending values merged in, description as a percent-encoded `description:` line).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from proxnix.proxmox.parsing import fail, load_json, output_lines
from proxnix.proxmox.propstring import (
    DRIVE_KEY,
    NET_KEY,
    Drive,
    NetDevice,
    decode_text,
    parse_bool,
    parse_boot_order,
    parse_property_string,
    split_tags,
)

_KEY_LINE = re.compile(r"^([a-z][a-z0-9_-]*):(?:\s(.*))?$")
_SECTION = re.compile(r"^\[([^\]\s]+)\]\s*$")
_SNAPSHOT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]+$")
PENDING_SECTION = "PENDING"
CLOUDINIT_SECTION = "special:cloudinit"


@dataclass(frozen=True)
class VmConfig:
    """One VM's configuration as the node stores it.

    `values` is the main section (in effect, or merged with pending when read from `qm config`), `pending` the
    `[PENDING]` section's values and `pending_delete` its `delete:` keys (without the `!` force marker).
    """

    vmid: int | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    pending: Mapping[str, str] = field(default_factory=dict)
    pending_delete: tuple[str, ...] = ()
    cloudinit: Mapping[str, str] = field(default_factory=dict)
    snapshots: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    digest: str = ""

    # --- raw access ----------------------------------------------------------------------------------------------

    def get(self, key: str, *, pending: bool = True) -> str | None:
        """A key's value; with `pending`, the value it will have after a restart (as `qm config` shows it)."""
        if pending:
            if key in self.pending_delete:
                return None
            if key in self.pending:
                return self.pending[key]
        return self.values.get(key)

    @property
    def pending_keys(self) -> list[str]:
        """Keys with a change pending until restart (set or deleted), sorted."""
        return sorted(set(self.pending) | set(self.pending_delete))

    def _int(self, key: str, *, pending: bool = True) -> int | None:
        value = self.get(key, pending=pending)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            return None

    # --- typed fields --------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.get("name") or ""

    def cores(self, *, pending: bool = True) -> int:
        return self._int("cores", pending=pending) or 1

    def sockets(self, *, pending: bool = True) -> int:
        return self._int("sockets", pending=pending) or 1

    def memory_mib(self, *, pending: bool = True) -> int:
        """Memory in MiB; `memory` is a property string since 8.1 (`current=` default key), default 512."""
        value = self.get("memory", pending=pending)
        if not value:
            return 512
        try:
            return int(parse_property_string(value, default_key="current").get("current", "512"))
        except ValueError:
            return 512

    @property
    def tags(self) -> list[str]:
        """Tags as stored (lowercased for comparison; Proxmox matches them case-insensitively)."""
        return [t.lower() for t in split_tags(self.get("tags") or "")]

    def _flag(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None or value == "":
            return default
        try:
            return parse_bool(value)
        except ValueError:
            return default

    @property
    def protection(self) -> bool:
        return self._flag("protection", False)

    @property
    def onboot(self) -> bool:
        return self._flag("onboot", False)

    @property
    def template(self) -> bool:
        return self._flag("template", False)

    @property
    def lock(self) -> str:
        return self.values.get("lock", "")

    @property
    def agent_enabled(self) -> bool:
        value = self.get("agent")
        if not value:
            return False
        try:
            return parse_bool(parse_property_string(value, default_key="enabled").get("enabled", "0"))
        except ValueError:
            return False

    def drives(self, *, pending: bool = True) -> dict[str, Drive]:
        """Disk entries by slot (`scsi0`, `unused0`, `efidisk0`, ...); unparseable entries are skipped."""
        keys = set(self.values) | (set(self.pending) if pending else set())
        result: dict[str, Drive] = {}
        for key in sorted(keys):
            if not DRIVE_KEY.match(key):
                continue
            value = self.get(key, pending=pending)
            if value is None:
                continue
            try:
                result[key] = Drive.parse(value)
            except ValueError:
                continue
        return result

    def nics(self) -> dict[str, NetDevice]:
        result: dict[str, NetDevice] = {}
        for key in sorted(set(self.values) | set(self.pending)):
            value = self.get(key)
            if NET_KEY.match(key) and value is not None:
                try:
                    result[key] = NetDevice.parse(value)
                except ValueError:
                    continue
        return result

    @property
    def boot_order(self) -> list[str]:
        try:
            return parse_boot_order(self.get("boot") or "")
        except ValueError:
            return []

    @property
    def boot_disk(self) -> str | None:
        """The slot `qm list` sizes: the first non-cdrom disk of `boot: order=`, else the first disk slot."""
        drives = self.drives()
        for slot in self.boot_order:
            drive = drives.get(slot)
            if drive is not None and not drive.is_cdrom:
                return slot
        for slot, drive in drives.items():
            if not slot.startswith("unused") and not drive.is_cdrom and not drive.is_cloudinit:
                return slot
        return None

    def disk_size_bytes(self, slot: str | None = None) -> int | None:
        """Size of `slot` (default: the boot disk) from its `size=` option."""
        slot = slot or self.boot_disk
        if slot is None:
            return None
        drive = self.drives().get(slot)
        if drive is None:
            return None
        try:
            return drive.size_bytes
        except ValueError:
            return None


def parse_vm_config(text: str, *, command: str = "qm config", vmid: int | None = None) -> VmConfig:
    """Parse `qm config` output or a raw `<vmid>.conf` file. Unknown lines raise ParseError naming the line."""
    section = ""  # "" = main, PENDING, special:cloudinit or a snapshot name
    sections: dict[str, dict[str, str]] = {"": {}}
    descriptions: dict[str, list[str]] = {}
    pending_delete: list[str] = []
    for line in output_lines(text):
        if not line.strip():
            continue
        header = _SECTION.match(line)
        if header:
            name = header.group(1)
            if name.upper() == PENDING_SECTION:
                name = PENDING_SECTION
            elif name.lower() == CLOUDINIT_SECTION:
                name = CLOUDINIT_SECTION
            elif not _SNAPSHOT_NAME.match(name):
                fail(command, "invalid section header", line)
            if name in sections:
                fail(command, f"duplicate section [{name}]", line)
            section = name
            sections[section] = {}
            continue
        if line.startswith("#"):
            descriptions.setdefault(section, []).append(decode_text(line[1:]))
            continue
        m = _KEY_LINE.match(line)
        if not m:
            fail(command, "expected 'key: value', '#description' or '[section]'", line)
        key, value = m.group(1), (m.group(2) or "").strip()
        if key == "description":
            descriptions[section] = [decode_text(value)]
            continue
        if key == "delete" and section == PENDING_SECTION:
            pending_delete.extend(k.lstrip("!") for k in value.split(",") if k.strip())
            continue
        if key in sections[section]:
            fail(command, f"duplicate key {key!r}", line)
        sections[section][key] = value
    main = sections.pop("")
    pending = sections.pop(PENDING_SECTION, {})
    cloudinit = sections.pop(CLOUDINIT_SECTION, {})
    return VmConfig(
        vmid=vmid,
        values=main,
        description="\n".join(descriptions.get("", [])).rstrip("\n"),
        pending=pending,
        pending_delete=tuple(pending_delete),
        cloudinit=cloudinit,
        snapshots=sections,
        digest=main.pop("digest", ""),
    )


def parse_vm_config_file(
    raw: str, *, path: str, vmid: int | None = None, raw_bytes: bytes | None = None
) -> VmConfig:
    """Parse a raw `<vmid>.conf` file; `digest` is the SHA-1 of its bytes (`raw_bytes` when given, else `raw`
    encoded as UTF-8), as Proxmox computes it for `qm set --digest`."""
    config = parse_vm_config(raw, command=f"cat {path}", vmid=vmid)
    data = raw_bytes if raw_bytes is not None else raw.encode("utf-8")
    digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    return VmConfig(
        vmid=config.vmid,
        values=config.values,
        description=config.description,
        pending=config.pending,
        pending_delete=config.pending_delete,
        cloudinit=config.cloudinit,
        snapshots=config.snapshots,
        digest=digest,
    )


def parse_config_json(text: str, *, command: str, vmid: int | None = None) -> VmConfig:
    """`pvesh get /nodes/<n>/qemu/<id>/config --output-format json`: one object; description raw (not encoded)."""
    data = load_json(command, text)
    if not isinstance(data, dict):
        fail(command, "expected a JSON object", text[:200])
    values: dict[str, str] = {}
    description = ""
    for key, value in data.items():
        if not isinstance(key, str):
            fail(command, "non-string key", repr(key))
        if isinstance(value, bool):
            values[key] = "1" if value else "0"
        elif isinstance(value, int | float | str):
            if key == "description":
                description = str(value)
            else:
                values[key] = str(value)
        else:
            fail(command, f"unexpected value type for {key!r}", repr(value)[:200])
    digest = values.pop("digest", "")
    return VmConfig(vmid=vmid, values=values, description=description, digest=digest)
