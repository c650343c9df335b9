"""Read-only qm commands: list, config, status, pending."""

from __future__ import annotations

from pvesim import runtime
from pvesim.cliargs import Args
from pvesim.conffile import encode_text
from pvesim.context import Ctx
from pvesim.errors import PveError
from pvesim.render import qm_list_header, qm_list_row, recursive_hash
from pvesim.vmstatus import vm_status


def cmd_list(ctx: Ctx, args: Args) -> int:
    full = args.flag("full")
    rows = []
    for vmid in ctx.store.vmids():
        try:
            conf = ctx.store.read(vmid).main
        except PveError:
            continue  # removed meanwhile
        stat = vm_status(vmid, conf, runtime.get(ctx.layout, vmid, ctx.node), ctx.settings.pve_version)
        status = stat["qmpstatus"] if full else stat["status"]
        rows.append(
            qm_list_row(vmid, stat["name"], status, stat["maxmem"], stat["maxdisk"], stat.get("pid", 0))
        )
    if rows:
        ctx.out.write(qm_list_header() + "".join(rows))
    return 0


def display_value(key: str, value: str) -> str:
    if key == "description":
        return encode_text(value)
    if key == "cipassword":
        return "**********"
    return value


def cmd_config(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    conf = ctx.store.read(vmid)
    snapname = args.options.get("snapshot")
    if snapname is not None:
        if snapname not in conf.snapshots:
            raise PveError(f"snapshot '{snapname}' does not exist")
        values = dict(conf.snapshots[snapname])
    elif args.flag("current"):
        values = dict(conf.main)
    else:
        values = conf.merged()
    for key in sorted(values):
        if key == "digest":
            continue
        ctx.out.write(f"{key}: {display_value(key, values[key])}\n")
    return 0


def cmd_status(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    conf = ctx.store.read(vmid)
    run = runtime.get(ctx.layout, vmid, ctx.node)
    if args.flag("verbose"):
        stat = vm_status(vmid, conf.main, run, ctx.settings.pve_version)
        ctx.out.write(recursive_hash(stat))
    else:
        ctx.out.write(f"status: {run.status if run else 'stopped'}\n")
    return 0


def cmd_pending(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    conf = ctx.store.read(vmid)
    deletes = conf.pending_delete()
    keys = set(conf.main) | {k for k in conf.pending if k != "delete"} | set(deletes)
    for key in sorted(keys):
        if key == "digest":
            continue
        cur = conf.main.get(key)
        new = conf.pending.get(key)
        cur = display_value(key, cur) if cur is not None else None
        new = display_value(key, new) if new is not None else None
        if cur is not None:
            if key in deletes:
                ctx.out.write(f"del {key}: {cur}\n")
            elif new is not None:
                ctx.out.write(f"cur {key}: {cur}\nnew {key}: {new}\n")
            else:
                ctx.out.write(f"cur {key}: {cur}\n")
        elif new is not None:
            ctx.out.write(f"new {key}: {new}\n")
    return 0
