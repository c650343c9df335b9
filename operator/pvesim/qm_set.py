"""`qm set` (update a config; hot-plug or [PENDING] for a running VM; disk creation and `import-from`) and
`qm unlock`."""

from __future__ import annotations

from pvesim import disks, runtime, vmedit
from pvesim.cliargs import Args
from pvesim.context import Ctx
from pvesim.errors import PveError
from pvesim.propstr import drive_order_key, is_drive_name, memory_mib
from pvesim.schema import is_vm_option, split_list
from pvesim.vmparams import normalize_value, read_sshkeys


def check_lock(conf: dict[str, str]) -> None:
    lock = conf.get("lock")
    if lock:
        raise PveError(f"VM is locked ({lock})")


def cmd_set(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    params = {k: v for k, v in args.options.items() if is_vm_option(k)}
    delete = split_list(args.options.get("delete", ""))
    revert = split_list(args.options.get("revert", ""))
    disks.check_import_syntax(params, ctx.settings.at_least("7.2"))
    if "sshkeys" in params:
        params["sshkeys"] = read_sshkeys(params["sshkeys"])
    if not params and not delete and not revert:
        raise PveError("no options specified")
    ctx.check_quorum()

    shown = dict(params)
    for name in ("delete", "revert", "digest", "skiplock", "force"):
        if name in args.options:
            shown[name] = args.options[name]
    line = " ".join(f"-{k} {'<hidden>' if k == 'cipassword' else shown[k]}" for k in sorted(shown))

    with ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        digest = args.options.get("digest")
        if digest and digest != conf.digest:
            raise PveError("checksum mismatch (file change by other user?)")
        if not args.flag("skiplock"):
            check_lock(conf.main)
        if "memory" in params or "balloon" in params:
            merged = conf.merged()
            merged.update({k: params[k] for k in ("memory", "balloon") if k in params})
            balloon = merged.get("balloon")
            if balloon is not None and balloon.isdigit() and int(balloon) > memory_mib(merged):
                raise PveError("balloon value too large (must be smaller than assigned memory)")
        disks.check_storages(ctx, params)
        ctx.out.write(f"update VM {vmid}: {line}\n")
        running = runtime.get(ctx.layout, vmid, ctx.node) is not None

        for key in revert:
            conf.pending.pop(key, None)
            pending_delete = conf.pending_delete()
            pending_delete.pop(key, None)
            conf.set_pending_delete(pending_delete)

        pending_delete = conf.pending_delete()
        for key in delete:
            if key not in conf.main and key not in conf.pending:
                ctx.log.write(f"cannot delete '{key}' - not set in current configuration!\n")
                continue
            conf.pending.pop(key, None)
            if key not in conf.main:
                continue
            if vmedit.applies_now(key, None, conf.main, running):
                vmedit.delete_key(ctx, vmid, conf.main, key)
            else:
                pending_delete[key] = args.flag("force")
        conf.set_pending_delete(pending_delete)

        created: list[str] = []
        try:
            for key in sorted(params, key=drive_order_key):
                if is_drive_name(key):
                    value = disks.create_disk(ctx, vmid, key, params[key], created)
                else:
                    value = normalize_value(
                        key, params[key], ctx.modern, for_set=ctx.settings.at_least("7.3")
                    )
                pending_delete = conf.pending_delete()
                if key in pending_delete:
                    del pending_delete[key]
                    conf.set_pending_delete(pending_delete)
                if vmedit.applies_now(key, value, conf.main, running):
                    conf.pending.pop(key, None)
                    vmedit.set_key(ctx, vmid, conf.main, key, value)
                else:
                    conf.pending[key] = value
        except BaseException:
            disks.free_quietly(ctx, created)
            raise
        finally:
            if created:  # volumes that were allocated must stay referenced
                for volid in created:
                    if not any(
                        disks.drive_volume(v) == volid for v in [*conf.main.values(), *conf.pending.values()]
                    ):
                        disks.add_unused(conf.main, volid)
        ctx.store.write(vmid, conf)
    return 0


def cmd_unlock(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    ctx.check_quorum()
    with ctx.lock_vm(vmid):
        conf = ctx.store.read(vmid)
        if conf.main.pop("lock", None) is not None:
            ctx.store.write(vmid, conf)
    return 0
