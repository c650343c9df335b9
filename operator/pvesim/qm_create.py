"""`qm create`: verification, the VMID-in-use check, the `lock: create` placeholder, and the create task
(disk allocation/import, default keys meta/smbios1/vmgenid/boot, optional start).
"""

from __future__ import annotations

import time

from pvesim import disks
from pvesim.cliargs import Args
from pvesim.conffile import VmConf
from pvesim.context import Ctx
from pvesim.errors import ParamError, PveError
from pvesim.propstr import default_boot_order, drive_order_key, is_drive_name, memory_mib, parse_boot_order
from pvesim.qm_power import boot
from pvesim.schema import is_vm_option
from pvesim.vmparams import new_uuid, normalize_value, read_sshkeys
from pvesim.vmstatus import qemu_version

USAGE = "qm create <vmid> [OPTIONS]"


def check_boot_order(conf: dict[str, str], boot: str | None) -> None:
    if not boot:
        return
    for device in parse_boot_order(boot) or []:
        if device not in conf:
            raise ParamError({"boot": f"invalid bootorder: device '{device}' does not exist'"}, USAGE)


def check_balloon(conf: dict[str, str]) -> None:
    balloon = conf.get("balloon")
    if balloon is not None and int(balloon) > memory_mib(conf):
        raise PveError("balloon value too large (must be smaller than assigned memory)")


def cmd_create(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    params = {k: v for k, v in args.options.items() if is_vm_option(k)}
    disks.check_import_syntax(params, ctx.settings.at_least("7.2"))
    if "sshkeys" in params:
        params["sshkeys"] = read_sshkeys(params["sshkeys"])
    ctx.check_quorum()
    disks.check_storages(ctx, params)
    check_balloon(params)
    check_boot_order(params, params.get("boot"))

    owner = ctx.store.locate(vmid)
    if owner is not None:
        raise PveError(f"unable to create VM {vmid} - VM {vmid} already exists on node '{owner}'")
    placeholder = VmConf(main={"lock": "create"})
    with ctx.lock_vm(vmid, timeout=ctx.settings.create_lock_timeout, placeholder=True):
        ctx.store.create(vmid, placeholder)

    created: list[str] = []
    try:
        with ctx.task(), ctx.lock_vm(vmid):
            conf: dict[str, str] = {}
            for key in sorted(params, key=drive_order_key):
                value = params[key]
                if is_drive_name(key):
                    conf[key] = disks.create_disk(ctx, vmid, key, value, created)
                else:
                    conf[key] = normalize_value(key, value, ctx.modern, for_set=False)
            if ctx.settings.at_least("7.1"):
                conf["meta"] = (
                    f"creation-qemu={qemu_version(ctx.settings.pve_version)},ctime={int(time.time())}"
                )
            conf.setdefault("smbios1", f"uuid={new_uuid()}")
            conf.setdefault("vmgenid", new_uuid())
            if not conf.get("boot"):
                conf["boot"] = default_boot_order(conf)
            ctx.store.write(vmid, VmConf(main=conf))
            if args.flag("start"):
                boot(ctx, vmid, ctx.store.read(vmid))
    except BaseException:
        disks.free_quietly(ctx, created)
        ctx.store.remove(vmid)
        raise
    return 0
