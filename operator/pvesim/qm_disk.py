"""`qm disk import` / `qm importdisk` and `qm disk resize` / `qm resize`."""

from __future__ import annotations

import re

from pvesim import disks, vmedit
from pvesim.cliargs import Args
from pvesim.context import Ctx
from pvesim.errors import PveError, TaskError
from pvesim.propstr import parse_drive, parse_size
from pvesim.qm_set import check_lock

RESIZE_RE = re.compile(r"^(\+)?(\d+(?:\.\d+)?)([KMGT])?$")


def cmd_import(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    source = args.positional["source"]
    storeid = args.positional["storage"]
    target = args.options.get("target-disk")
    if target is not None and not ctx.settings.at_least("8.3"):
        raise PveError("Unknown option: target-disk")
    ctx.check_quorum()
    conf = ctx.store.read(vmid)
    check_lock(conf.main)
    disks.resolve_source(ctx, source)
    ctx.storage.check_images(storeid)
    ctx.out.write(f"importing disk '{source}' to VM {vmid} ...\n")
    with ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        volid, size = disks.import_image(ctx, vmid, source, storeid, args.options.get("format"))
        if target is not None:
            vmedit.set_key(ctx, vmid, conf.main, target, f"{volid},size={size}")
            drive_id = target
        else:
            drive_id = disks.add_unused(conf.main, volid) or "unused0"
        ctx.store.write(vmid, conf)
    if ctx.settings.at_least("8.3"):
        ctx.out.write(f"{drive_id}: successfully imported disk '{volid}'\n")
    else:
        ctx.out.write(f"Successfully imported disk as '{drive_id}:{volid}'\n")
    return 0


def cmd_resize(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    disk = args.positional["disk"]
    match = RESIZE_RE.match(args.positional["size"])
    assert match is not None  # verified by the schema
    try:
        if ctx.settings.at_least("8.0"):
            with ctx.task():
                _resize(ctx, vmid, disk, match, args)
        else:
            _resize(ctx, vmid, disk, match, args)
    except TaskError as exc:
        # 8.x runs the resize as a task and qm does not check its result: the error shows, the exit code is 0.
        ctx.out.flush()
        ctx.err.write(exc.render())
        return 0
    return 0


def _resize(ctx: Ctx, vmid: int, disk: str, match: re.Match[str], args: Args) -> None:
    ctx.check_quorum()
    with ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        digest = args.options.get("digest")
        if digest and digest != conf.digest:
            raise PveError("checksum mismatch (file change by other user?)")
        if not args.flag("skiplock"):
            check_lock(conf.main)
        if disk not in conf.main:
            raise PveError(f"disk '{disk}' does not exist")
        drive = parse_drive(conf.main[disk])
        volid = disks.drive_volume(conf.main[disk])
        if drive.is_cdrom:
            raise PveError("you can't resize a cdrom")
        if volid is None:
            raise PveError(f"disk '{disk}' has no associated volume")
        size = ctx.storage.size(volid)
        if size is None:
            raise PveError(f"Could not determine current size of volume '{volid}'")
        value = parse_size(match.group(2) + (match.group(3) or ""))
        assert value is not None
        new_size = size + value if match.group(1) else value
        if new_size < size:
            raise PveError("shrinking disks is not supported")
        if new_size == size:
            return
        ctx.storage.resize(volid, new_size)
        drive.opts["size"] = str(new_size)
        conf.main[disk] = drive.print()
        ctx.store.write(vmid, conf)
