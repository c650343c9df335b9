"""`qm migrate <vmid> <target> [--online] [--with-local-disks]` between simulated nodes: the config moves to the
target node, local disk volumes move to the same storage there, a running VM keeps running (online)."""

from __future__ import annotations

import time

from pvesim import disks, faults, runtime
from pvesim.cliargs import Args
from pvesim.context import Ctx
from pvesim.errors import ParamError, PveError
from pvesim.qm_set import check_lock

USAGE = "qm migrate <vmid> <target> [OPTIONS]"


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def cmd_migrate(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    target = args.positional["target"]
    if target == ctx.node:
        raise ParamError({"target": "target is local node."}, USAGE)
    if target not in ctx.nodes:
        raise PveError(f"no such cluster node '{target}'")
    ctx.check_quorum()
    conf = ctx.store.read(vmid)
    run = runtime.get(ctx.layout, vmid, ctx.node)
    online = args.flag("online")
    if run is not None and not online:
        raise PveError("can't migrate running VM without --online")
    started = time.time()
    with ctx.task(), ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        check_lock(conf.main)
        volumes = [v for _, v in disks.referenced_volumes(conf.main)]
        if run is not None and volumes and not args.flag("with-local-disks"):
            raise PveError("can't live migrate attached local disks without with-local-disks option")
        ctx.out.write(f"{_stamp()} starting migration of VM {vmid} to node '{target}' (127.0.0.1)\n")
        if faults.load(ctx.layout, target).down:
            raise PveError(
                f"{_stamp()} ERROR: migration aborted (duration 00:00:00): Can't connect to destination address "
                "using public key"
            )
        conf.main["lock"] = "migrate"
        ctx.store.write(vmid, conf)
        try:
            for volid in volumes:
                ctx.out.write(f"{_stamp()} found local disk '{volid}' (attached)\n")
            if volumes:
                ctx.out.write(f"{_stamp()} copying local disk images\n")
            for volid in volumes:
                if ctx.storage.exists(volid):
                    ctx.storage.move_to(volid, target)
            if run is not None:
                ctx.out.write(f"{_stamp()} starting VM {vmid} on remote node '{target}'\n")
                run.node = target
                runtime.put(ctx.layout, vmid, run)
        finally:
            del conf.main["lock"]
            ctx.store.write(vmid, conf)
        ctx.store.move(vmid, target)
        elapsed = int(time.time() - started)
        duration = f"{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        ctx.out.write(f"{_stamp()} migration finished successfully (duration {duration})\n")
    return 0
