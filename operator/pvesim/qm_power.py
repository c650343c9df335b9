"""Power and lifecycle commands: start, stop, shutdown, reboot, suspend, resume, destroy.

All run as tasks (output on stdout, failure on stderr with exit 255) except the checks qemu-server does before
forking the worker (missing config for stop/shutdown, destroy's protection/running checks).
"""

from __future__ import annotations

import time

from pvesim import disks, runtime, vmedit
from pvesim.cliargs import Args
from pvesim.conffile import VmConf
from pvesim.context import Ctx
from pvesim.errors import PveError, config_not_on_node
from pvesim.propstr import is_drive_name
from pvesim.qm_set import check_lock

CLOUDINIT_KEYS = (
    "cicustom",
    "cipassword",
    "citype",
    "ciupgrade",
    "ciuser",
    "nameserver",
    "searchdomain",
    "sshkeys",
)


def _has_cloudinit(conf: dict[str, str]) -> bool:
    return any(is_drive_name(k) and "cloudinit" in (disks.drive_volume(v) or "") for k, v in conf.items())


def boot(ctx: Ctx, vmid: int, conf: VmConf) -> None:
    """Apply pending changes, activate the disks, regenerate cloud-init, mark the VM running."""
    vmedit.apply_pending(ctx, vmid, conf)
    for key, volid in disks.referenced_volumes(conf.main):
        if is_drive_name(key) and not ctx.storage.exists(volid):
            raise PveError(f"volume '{volid}' does not exist")
    if _has_cloudinit(conf.main):
        ctx.out.write("generating cloud-init ISO\n")
        if ctx.settings.at_least("7.3"):  # [special:cloudinit] exists from 7.3 on
            conf.cloudinit = {
                k: v for k, v in conf.main.items() if k in CLOUDINIT_KEYS or k.startswith(("ipconfig", "net"))
            }
    ctx.store.write(vmid, conf)
    runtime.start(ctx.layout, vmid, ctx.node)


def cmd_start(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    ctx.check_quorum()
    with ctx.task(), ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        if not args.flag("skiplock"):
            check_lock(conf.main)
        if conf.main.get("template") == "1":
            raise PveError("you can't start a vm if it's a template")
        if runtime.get(ctx.layout, vmid, ctx.node):
            raise PveError(f"VM {vmid} already running")
        boot(ctx, vmid, conf)
    return 0


def _require_local(ctx: Ctx, vmid: int) -> None:
    if not ctx.layout.conf_path(ctx.node, vmid).exists():
        raise config_not_on_node(ctx.node, vmid)


def cmd_stop(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    ctx.check_quorum()
    _require_local(ctx, vmid)
    with ctx.task(), ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        if not args.flag("skiplock"):
            check_lock(conf.main)
        runtime.clear(ctx.layout, vmid)
    return 0


def _power_down(ctx: Ctx, vmid: int, timeout: float, force: bool) -> None:
    """Wait for a cooperative guest (settings.shutdown_delay) or time out as `noacpi` guests do."""
    delay = float("inf") if ctx.fault("noacpi") else ctx.settings.shutdown_delay
    if delay > timeout:
        time.sleep(timeout)
        if not force:
            raise PveError("VM quit/powerdown failed - got timeout")
        ctx.log.write("VM still running - terminating now with SIGTERM\n")
    else:
        time.sleep(delay)
    runtime.clear(ctx.layout, vmid)


def cmd_shutdown(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    ctx.check_quorum()
    _require_local(ctx, vmid)
    timeout = float(args.options.get("timeout", "60"))
    if runtime.get(ctx.layout, vmid, ctx.node) is None:
        ctx.err.write(f"VM {vmid} not running\n")
        ctx.err.flush()
    with ctx.task(), ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        if not args.flag("skiplock"):
            check_lock(conf.main)
        run = runtime.get(ctx.layout, vmid, ctx.node)
        if run is None:
            return 0
        if run.status == "paused":
            raise PveError("VM is paused - cannot shutdown")
        _power_down(ctx, vmid, timeout, args.flag("forceStop"))
    return 0


def cmd_reboot(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    ctx.check_quorum()
    timeout = float(args.options.get("timeout", "60"))
    with ctx.task(), ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        check_lock(conf.main)
        run = runtime.get(ctx.layout, vmid, ctx.node)
        if run is None:
            raise PveError(f"VM {vmid} not running")
        if run.status == "paused":
            raise PveError("VM is paused - cannot shutdown")
        _power_down(ctx, vmid, timeout, False)
        boot(ctx, vmid, conf)
    return 0


def _set_run_status(ctx: Ctx, vmid: int, args: Args, want: str) -> int:
    ctx.check_quorum()
    with ctx.task(), ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        if not args.flag("skiplock"):
            check_lock(conf.main)
        run = runtime.get(ctx.layout, vmid, ctx.node)
        if run is None:
            raise PveError(f"VM {vmid} not running")
        run.status = want
        runtime.put(ctx.layout, vmid, run)
    return 0


def cmd_suspend(ctx: Ctx, args: Args) -> int:
    return _set_run_status(ctx, int(args.positional["vmid"]), args, "paused")


def cmd_resume(ctx: Ctx, args: Args) -> int:
    return _set_run_status(ctx, int(args.positional["vmid"]), args, "running")


def cmd_destroy(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    ctx.check_quorum()
    conf = ctx.store.read(vmid)
    if conf.main.get("protection") == "1":
        raise PveError(f"can't remove VM {vmid} - protection mode enabled")
    if runtime.get(ctx.layout, vmid, ctx.node):
        raise PveError(f"VM {vmid} is running - destroy failed")
    with ctx.task(), ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        if not args.flag("skiplock"):
            check_lock(conf.main)
        if runtime.get(ctx.layout, vmid, ctx.node):
            raise PveError(f"VM {vmid} is running - destroy failed")
        conf.main["lock"] = "destroyed"
        ctx.store.write(vmid, conf)
        volumes = []
        for section in (conf.main, conf.pending, *conf.snapshots.values()):
            for _, volid in disks.referenced_volumes(section):
                if volid not in volumes and disks.owned_by(volid, vmid):
                    volumes.append(volid)
        if args.flag("destroy-unreferenced-disks"):
            volumes += [v for v in ctx.storage.owned_volumes(vmid) if v not in volumes]
        for volid in volumes:
            if ctx.storage.exists(volid):
                ctx.storage.free(volid)
        ctx.store.remove(vmid)
        runtime.clear(ctx.layout, vmid)
        if args.flag("purge"):
            ctx.out.write(f"purging VM {vmid} from related configurations..\n")
    return 0
