"""Disks of a VM: creating them from `qm create`/`qm set` drive options (`<storage>:<GiB>`, `<storage>:0,import-from=`,
`<storage>:cloudinit`, an existing volume), importing images, and the volumes a config references.
"""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path

from pvesim.context import Ctx
from pvesim.errors import ParamError, PveError
from pvesim.propstr import GIB, Drive, PropError, drive_order_key, is_drive_name, is_unused_name, parse_drive
from pvesim.storage import qemu_img_info

_NEW_DISK_RE = re.compile(r"^([a-zA-Z][\w\-.]*):(\d+(?:\.\d+)?)$")
_CLOUDINIT_RE = re.compile(r"^([a-zA-Z][\w\-.]*):cloudinit$")
_VOLID_RE = re.compile(r"^([a-zA-Z][\w\-.]*):(.+)$")
IMPORT_SYNTAX = "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>"


def check_import_syntax(params: dict[str, str], import_from: bool = True) -> None:
    """`import-from` needs `<storage>:0` (and exists from PVE 7.2 on)."""
    errors = {}
    for key, value in params.items():
        if not is_drive_name(key):
            continue
        try:
            drive = parse_drive(value)
        except PropError:
            continue
        if "import-from" in drive.opts and not import_from:
            errors[key] = "invalid format - format error"
            errors[f"{key}.import-from"] = (
                "property is not defined in schema and the schema does not allow additional properties"
            )
        elif "import-from" in drive.opts:
            match = _NEW_DISK_RE.match(drive.file)
            if not match or float(match.group(2)) != 0:
                errors[key] = IMPORT_SYNTAX
    if errors:
        raise ParamError(errors)


def check_storages(ctx: Ctx, params: dict[str, str]) -> None:
    """`storage 'x' does not exist` before anything is created."""
    for key in sorted(params, key=drive_order_key):
        if not is_drive_name(key):
            continue
        drive = parse_drive(params[key])
        match = _NEW_DISK_RE.match(drive.file) or _CLOUDINIT_RE.match(drive.file)
        if match:
            ctx.storage.check_images(match.group(1))
        source = drive.opts.get("import-from")
        if source is not None:
            resolve_source(ctx, source, import_from=True)


def resolve_source(ctx: Ctx, source: str, import_from: bool = False) -> str:
    """The file behind an import source (absolute path or `<storage>:import/<file>` volume)."""
    if source.startswith("/"):
        path = Path(source)
        if not path.is_file():
            if import_from:
                raise PveError(f"can't find file '{source}'")
            raise PveError(f"{source}: non-existent or non-regular file")
        return source
    match = _VOLID_RE.match(source)
    if match:
        _, path, _ = ctx.storage.volume_path(source)
        if not path.is_file():
            raise PveError(f"volume '{source}' does not exist")
        return str(path)
    if import_from:
        raise PveError(f"can't find file '{source}'")
    raise PveError(f"{source}: non-existent or non-regular file")


def import_image(
    ctx: Ctx, vmid: int, source: str, storeid: str, wanted_format: str | None
) -> tuple[str, int]:
    """Allocate a volume and copy the image into it; returns (volume id, allocated size)."""
    sdef = ctx.storage.check_images(storeid)
    path = resolve_source(ctx, source)
    info = qemu_img_info(path)
    vsize = int(info["virtual-size"])
    fmt = ctx.storage.resolve_format(sdef, wanted_format)
    volid = ctx.storage.alloc(storeid, vmid, fmt, math.ceil(vsize / 1024) * 1024)
    ctx.storage.copy_image(path, str(info.get("format", "raw")), volid, vsize)
    return volid, ctx.storage.size(volid) or vsize


def create_disk(ctx: Ctx, vmid: int, key: str, value: str, created: list[str]) -> str:
    """Turn one drive option into its stored form, allocating/importing volumes (appended to `created`)."""
    drive = parse_drive(value)
    wanted_format = drive.opts.pop("format", None)
    source = drive.opts.pop("import-from", None)
    new_disk = _NEW_DISK_RE.match(drive.file)
    cloudinit = _CLOUDINIT_RE.match(drive.file)
    if source is not None and new_disk:
        volid, size = import_image(ctx, vmid, source, new_disk.group(1), wanted_format)
        created.append(volid)
        drive.file = volid
        drive.opts["size"] = str(size)
        ctx.out.write(f"{key}: successfully created disk '{drive.print()}'\n")
        return drive.print()
    if cloudinit:
        storeid = cloudinit.group(1)
        sdef = ctx.storage.check_images(storeid)
        fmt = "qcow2" if sdef.type == "dir" else "raw"
        volid = ctx.storage.alloc(storeid, vmid, fmt, 4 * 1024 * 1024, name=f"vm-{vmid}-cloudinit")
        created.append(volid)
        drive.file = volid
        drive.opts["media"] = "cdrom"
        ctx.out.write(f"{key}: successfully created disk '{drive.print()}'\n")
        return drive.print()
    if new_disk and not drive.is_cdrom:
        storeid = new_disk.group(1)
        sdef = ctx.storage.check_images(storeid)
        size = int(float(new_disk.group(2)) * GIB)
        if size <= 0:
            raise PveError(f"{key}: invalid size 0")
        fmt = ctx.storage.resolve_format(sdef, wanted_format)
        volid = ctx.storage.alloc(storeid, vmid, fmt, size)
        created.append(volid)
        drive.file = volid
        drive.opts["size"] = str(ctx.storage.size(volid) or size)
        ctx.out.write(f"{key}: successfully created disk '{drive.print()}'\n")
        return drive.print()
    if wanted_format is not None:
        drive.opts["format"] = wanted_format
    if drive.file in ("none", "cdrom") or drive.file.startswith("/"):
        return drive.print()
    if _VOLID_RE.match(drive.file):
        if not ctx.storage.exists(drive.file):
            raise PveError(f"volume '{drive.file}' does not exist")
        if not drive.is_cdrom and "size" not in drive.opts:
            existing = ctx.storage.size(drive.file)
            if existing:
                drive.opts["size"] = str(existing)
        return drive.print()
    raise PveError(f"unable to parse volume ID '{drive.file}'")


def drive_volume(value: str) -> str | None:
    """The storage volume a drive or unused entry refers to (None for cdrom/none/paths)."""
    try:
        drive: Drive = parse_drive(value)
    except PropError:
        return None
    if drive.file in ("none", "cdrom") or drive.file.startswith("/") or ":" not in drive.file:
        return None
    if drive.is_cdrom and "cloudinit" not in drive.file:
        return None
    return drive.file


def referenced_volumes(conf: dict[str, str]) -> list[tuple[str, str]]:
    result = []
    for key in sorted(conf, key=drive_order_key):
        if is_drive_name(key) or is_unused_name(key):
            volid = drive_volume(conf[key])
            if volid:
                result.append((key, volid))
    return result


def owned_by(volid: str, vmid: int) -> bool:
    name = volid.split(":", 1)[-1].split("/")[-1]
    return bool(re.match(rf"^(vm|base)-{vmid}-", name))


def add_unused(conf: dict[str, str], volid: str) -> str | None:
    for key, value in conf.items():
        if is_unused_name(key) and value == volid:
            return None
    n = 0
    while f"unused{n}" in conf:
        n += 1
    conf[f"unused{n}"] = volid
    return f"unused{n}"


def remove_unused_entry(conf: dict[str, str], volid: str) -> None:
    for key in [k for k, v in conf.items() if is_unused_name(k) and v == volid]:
        del conf[key]


def free_quietly(ctx: Ctx, volids: list[str]) -> None:
    for volid in volids:
        with contextlib.suppress(PveError):
            ctx.storage.free(volid)
