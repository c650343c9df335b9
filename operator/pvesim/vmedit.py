"""Changing a VM config: which changes apply at once on a running VM and which wait in [PENDING], deleting
keys (disks are detached to `unusedN`, `unusedN` volumes are freed), and applying pending changes at start/reboot.
"""

from __future__ import annotations

import re

from pvesim import disks
from pvesim.conffile import VmConf
from pvesim.context import Ctx
from pvesim.propstr import PropError, is_drive_name, is_unused_name, parse_drive

# Applied at once even while the VM runs (options that need no QEMU change, cloud-init, balloon via QMP).
IMMEDIATE = frozenset(
    {
        "description",
        "name",
        "onboot",
        "protection",
        "tags",
        "startup",
        "hookscript",
        "balloon",
        "lock",
        "ciuser",
        "cipassword",
        "sshkeys",
        "nameserver",
        "searchdomain",
        "citype",
        "cicustom",
        "ciupgrade",
        "vmstatestorage",
        "migrate_downtime",
        "migrate_speed",
        "shares",
    }
)
_IPCONFIG_RE = re.compile(r"^ipconfig\d+$")
_NET_RE = re.compile(r"^net\d+$")


def hotplug_features(conf: dict[str, str]) -> set[str]:
    value = conf.get("hotplug", "network,disk,usb")
    if value == "1":
        return {"network", "disk", "usb"}
    if value == "0":
        return set()
    return {item for item in value.split(",") if item}


def applies_now(key: str, value: str | None, conf: dict[str, str], running: bool) -> bool:
    """True when a change of `key` takes effect at once (always for a stopped VM)."""
    if not running or key in IMMEDIATE or _IPCONFIG_RE.match(key) or is_unused_name(key):
        return True
    features = hotplug_features(conf)
    if _NET_RE.match(key):
        return "network" in features
    if is_drive_name(key):
        for candidate in (value, conf.get(key)):
            if candidate is None:
                continue
            try:
                if parse_drive(candidate).is_cdrom:
                    return True
            except PropError:
                pass
        return "disk" in features and key.startswith(("scsi", "virtio"))
    return False


def delete_key(ctx: Ctx, vmid: int, conf: dict[str, str], key: str) -> None:
    """Remove `key` from a config section, detaching or freeing its volume as qemu-server does."""
    value = conf.pop(key, None)
    if value is None:
        return
    volid = disks.drive_volume(value)
    if volid is None:
        return
    if is_unused_name(key) or "cloudinit" in volid:
        if disks.owned_by(volid, vmid) and ctx.storage.exists(volid):
            ctx.storage.free(volid)
        return
    if is_drive_name(key):
        still_used = any(disks.drive_volume(v) == volid for k, v in conf.items() if is_drive_name(k))
        if not still_used:
            disks.add_unused(conf, volid)


def set_key(ctx: Ctx, vmid: int, conf: dict[str, str], key: str, value: str) -> None:
    """Store a value; a replaced disk volume becomes `unusedN`, an attached unused volume leaves the list."""
    old = conf.get(key)
    conf[key] = value
    if is_drive_name(key):
        new_volid = disks.drive_volume(value)
        if new_volid:
            disks.remove_unused_entry(conf, new_volid)
        if old is not None:
            old_volid = disks.drive_volume(old)
            if old_volid and old_volid != new_volid and "cloudinit" not in old_volid:
                disks.add_unused(conf, old_volid)


def apply_pending(ctx: Ctx, vmid: int, conf: VmConf) -> bool:
    """Move [PENDING] into the main section (at start, reboot or for a stopped VM). Returns True if changed."""
    if not conf.pending:
        return False
    deletes = conf.pending_delete()
    for key in deletes:
        delete_key(ctx, vmid, conf.main, key)
    for key, value in sorted(conf.pending.items()):
        if key != "delete":
            set_key(ctx, vmid, conf.main, key, value)
    conf.pending = {}
    return True
