"""The Proxmox node client: builders + parsers composed over one node's SSH pool, with retries and the ownership guard.

What it owns:
- one method per operation the controllers need (reads, the batched `inventory`, create/update/import/resize/
  power/destroy), each returning typed results from `proxnix.proxmox`;
- failure classification (`classify.classify_failure`) and bounded retries with backoff for transient errors
  (locks, timeouts, dropped connections); permanent errors are raised at once. A transient failure that may have
  taken effect (`ambiguous`: connection lost mid-command) is retried only for idempotent operations;
  create is made idempotent by the ownership marker (a VMID conflict with our own VM on this node is success);
- the ownership guard: every change or destroy first reads the VM's config file (`cat`, no Perl start-up) and
  raises NotOwned unless the marker names the caller's ProxmoxVM uid; `qm set` carries that config's digest, so
  the write applies only to the config that was checked.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from proxnix.adapters.ssh_pool import CommandResult, SshPool
from proxnix.proxmox import commands
from proxnix.proxmox.classify import classify_failure
from proxnix.proxmox.commands import ConfigValue
from proxnix.proxmox.definition import VmDefinition
from proxnix.proxmox.dialect import QmDialect
from proxnix.proxmox.disk_import import ImportedDisk, parse_import_from_output, parse_import_output
from proxnix.proxmox.errors import (
    CommandFailed,
    DiskNotFound,
    DiskShrinkRefused,
    NotOwned,
    ProtectionEnabled,
    TransientError,
    VmidConflict,
    VmLocked,
    VmNotFound,
    WrongPowerState,
)
from proxnix.proxmox.guest_agent import GuestInterface, parse_network_interfaces
from proxnix.proxmox.inventory import CONF_DIR, NodeInventory, inventory_script, new_nonce, parse_inventory
from proxnix.proxmox.ownership import (
    OWNER_TAG,
    Owner,
    config_ownership,
    read_ownership,
    require_owned,
)
from proxnix.proxmox.propstring import Drive
from proxnix.proxmox.pvesh import (
    parse_version,
)
from proxnix.proxmox.shell import check_slot, check_vmid, shell_join
from proxnix.proxmox.vm_config import VmConfig, parse_vm_config_file

log = logging.getLogger(__name__)

T = TypeVar("T")
ImportMethod = Literal["import-from", "importdisk"]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient failures."""

    attempts: int = 4
    initial_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """Delay after failed attempt number `attempt` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311


class ProxmoxClient:
    """One Proxmox node, reached through `pool`. `node` is the node's Proxmox name (as in /nodes)."""

    def __init__(
        self,
        pool: SshPool,
        node: str,
        *,
        retry: RetryPolicy | None = None,
        dialect: QmDialect | None = None,
        command_timeout_s: float = 120.0,
        import_timeout_s: float = 3600.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.pool = pool
        self.node = node
        self.retry = retry or RetryPolicy()
        self.dialect = dialect or QmDialect()
        self.command_timeout_s = command_timeout_s
        self.import_timeout_s = import_timeout_s
        self._sleep = sleep

    # --- plumbing ----------------------------------------------------------------------------------------------------

    async def _run(
        self,
        command: Sequence[str] | str,
        *,
        timeout_s: float | None = None,
        stdin: bytes | None = None,
        shown: str | None = None,
        read_only: bool = False,
    ) -> CommandResult:
        """One attempt: run, and raise the classified error on a non-zero exit. Changes (not `read_only`) run to
        completion on the node even if this side gives up; reads are ended with their channel."""
        result = await self.pool.run(
            command, timeout_s=timeout_s or self.command_timeout_s, stdin=stdin, interruptible=read_only
        )
        if result.exit_status != 0:
            text = shown or (command if isinstance(command, str) else shell_join(command))
            raise classify_failure(
                text[:200], result.exit_status, result.stdout, result.stderr, node=self.node
            )
        return result

    async def _retrying(
        self,
        what: str,
        op: Callable[[int], Awaitable[T]],
        *,
        idempotent: bool,
        attempts: int | None = None,
    ) -> T:
        limit = attempts or self.retry.attempts
        attempt = 1
        while True:
            try:
                return await op(attempt)
            except TransientError as exc:
                if attempt >= limit or (exc.ambiguous and not idempotent):
                    raise
                delay = self.retry.delay(attempt)
                log.info(
                    "node %s: %s: %s (attempt %d/%d); retrying in %.2f s",
                    self.node,
                    what,
                    exc,
                    attempt,
                    limit,
                    delay,
                )
                await self._sleep(delay)
                attempt += 1

    async def _read(self, argv: list[str], what: str, *, attempts: int | None = None) -> CommandResult:
        return await self._retrying(
            what, lambda _: self._run(argv, read_only=True), idempotent=True, attempts=attempts
        )

    # --- reads -------------------------------------------------------------------------------------------------------

    async def inventory(self) -> NodeInventory:
        """Every VM of the node (config, power, tags, protection, lock, pending, ownership) and every guest of the
        cluster, in ONE remote call (one `pvesh` start-up plus `cat` of the config files)."""

        async def once(_: int) -> NodeInventory:
            nonce = new_nonce()
            result = await self._run(inventory_script(nonce), shown="inventory", read_only=True)
            return parse_inventory(result.stdout, nonce, node=self.node, stderr=result.stderr)

        return await self._retrying("inventory", once, idempotent=True)

    async def read_config(self, vmid: int) -> VmConfig:
        """The VM's raw config file on this node (no Perl start-up); VmNotFound when it is not here."""
        path = f"{CONF_DIR}/{check_vmid(vmid)}.conf"

        async def once(_: int) -> VmConfig:
            result = await self.pool.run(["cat", "--", path], timeout_s=self.command_timeout_s)
            if result.exit_status != 0:
                if "No such file" in result.stderr:
                    raise VmNotFound(
                        f"VM {vmid} does not exist on node {self.node}", vmid=vmid, node=self.node
                    )
                raise classify_failure(
                    f"cat {path}", result.exit_status, result.stdout, result.stderr, node=self.node
                )
            return parse_vm_config_file(result.stdout, path=path, vmid=vmid, raw_bytes=result.stdout_bytes)

        return await self._retrying(f"read {path}", once, idempotent=True)

    async def guest_interfaces(self, vmid: int) -> list[GuestInterface]:
        """The guest agent's network interfaces. Not retried here: AgentNotRunning (booting) is for the caller to
        poll on its own schedule; AgentNotConfigured / WrongPowerState are permanent."""
        argv = commands.guest_network_interfaces(vmid)
        result = await self._read(argv, "guest network-get-interfaces", attempts=1)
        return parse_network_interfaces(result.stdout, command=" ".join(argv))

    async def pve_version(self) -> str:
        return parse_version((await self._read(commands.pve_version(), "version")).stdout)

    # --- the ownership guard ---------------------------------------------------------------------------------------

    async def _owned(self, vmid: int, owner_uid: str) -> VmConfig:
        config = await self.read_config(vmid)
        require_owned(config, owner_uid, vmid=vmid, node=self.node)
        if config.lock:
            raise VmLocked(f"VM {vmid} is locked ({config.lock})", lock=config.lock, node=self.node)
        return config

    async def _mutate(
        self,
        what: str,
        vmid: int,
        owner_uid: str,
        build: Callable[[VmConfig], list[str] | None],
        *,
        idempotent: bool = True,
        timeout_s: float | None = None,
    ) -> tuple[VmConfig, CommandResult | None]:
        """Check ownership on the current config, build the command from it, run it; retried as a whole."""

        async def once(_: int) -> tuple[VmConfig, CommandResult | None]:
            config = await self._owned(vmid, owner_uid)
            argv = build(config)
            if argv is None:
                return config, None
            return config, await self._run(argv, timeout_s=timeout_s)

        return await self._retrying(what, once, idempotent=idempotent)

    def _digest(self, config: VmConfig) -> str | None:
        return config.digest if self.dialect.use_digest and config.digest else None

    # --- create ------------------------------------------------------------------------------------------------------

    async def create_vm(
        self,
        definition: VmDefinition,
        owner: Owner,
        *,
        image_sha256: str | None = None,
        import_from: str | None = None,
    ) -> VmConfig:
        """Create the VM with the ownership marker (and, with `import_from`, its boot disk from a file on the node).

        Idempotent: if the VMID already holds a VM on this node whose marker names `owner.uid` (a retry after a
        lost connection, or a repeated call), that VM's config is returned. Any other holder → VmidConflict.
        """
        keys = definition.cloud_init.ssh_authorized_keys if definition.cloud_init else ()
        argv = commands.create_vm(
            definition,
            owner,
            image_sha256=image_sha256,
            import_from=import_from,
            sshkeys_path="/dev/stdin" if keys else None,
        )
        stdin = ("\n".join(keys) + "\n").encode() if keys else None
        timeout_s = self.import_timeout_s if import_from else None

        async def once(_: int) -> VmConfig:
            try:
                await self._run(argv, timeout_s=timeout_s, stdin=stdin, shown=f"qm create {definition.vmid}")
            except VmidConflict as conflict:
                try:
                    existing = await self.read_config(definition.vmid)
                except VmNotFound:
                    raise conflict from None
                if config_ownership(existing).owned_by(owner.uid):
                    log.info("node %s: VM %d already created for %s", self.node, definition.vmid, owner)
                    return existing
                raise
            return await self.read_config(definition.vmid)

        return await self._retrying(f"create VM {definition.vmid}", once, idempotent=True)

    # --- update ------------------------------------------------------------------------------------------------------

    async def update_vm(
        self,
        vmid: int,
        owner_uid: str,
        options: Mapping[str, ConfigValue],
        *,
        delete: Sequence[str] = (),
    ) -> None:
        """`qm set` on an owned VM. On a running VM cores/sockets/memory go to [PENDING] (see the next inventory).

        The marker cannot be removed through here: a new `description` must still name `owner_uid`, new `tags`
        must keep `proxnix`.
        """
        if "description" in options or "description" in delete:
            desc = str(options.get("description", ""))
            if not read_ownership(desc, [OWNER_TAG]).owned_by(owner_uid):
                raise NotOwned(
                    f"refusing to drop the ownership marker of VM {vmid}", vmid=vmid, node=self.node
                )
        if "tags" in delete or ("tags" in options and OWNER_TAG not in str(options["tags"]).split(";")):
            raise NotOwned(f"refusing to drop the {OWNER_TAG!r} tag of VM {vmid}", vmid=vmid, node=self.node)
        await self._mutate(
            f"update VM {vmid}",
            vmid,
            owner_uid,
            lambda cfg: commands.set_options(vmid, options, delete=delete, digest=self._digest(cfg)),
        )

    # --- disks -------------------------------------------------------------------------------------------------------

    async def import_image(
        self,
        vmid: int,
        owner_uid: str,
        source: str,
        *,
        slot: str,
        storage: str,
        method: ImportMethod = "import-from",
        boot: bool = True,
        image_format: str | None = None,
    ) -> ImportedDisk:
        """Import a file on the node as the VM's disk in `slot` (and make it the boot disk).

        `import-from` (PVE 7.2+) is one `qm set`; `importdisk` runs `qm disk import` (or `qm importdisk`) and then
        attaches the new unused volume. Neither is blindly retried after an ambiguous failure: the next attempt
        first checks whether the disk already appeared.
        """
        check_slot(slot)
        before: dict[str, str] = {}

        async def once(attempt: int) -> ImportedDisk:
            config = await self._owned(vmid, owner_uid)
            drives = config.drives(pending=False)
            if attempt == 1:
                before.update({k: d.volume for k, d in drives.items()})
            else:
                # After a failed attempt: did it create the disk anyway?
                current = drives.get(slot)
                if (
                    current is not None
                    and current.volume != before.get(slot)
                    and "import-from" not in current.options
                ):
                    return ImportedDisk(slot=slot, volume=current.volume, size_bytes=_size(current))
                known = set(before.values())
                orphan = next(
                    (d.volume for k, d in drives.items() if k.startswith("unused") and d.volume not in known),
                    None,
                )
                if method == "importdisk" and orphan is not None:
                    await self._run(commands.attach_disk(vmid, slot, orphan, boot=boot))
                    return ImportedDisk(slot=slot, volume=orphan)
            if method == "import-from":
                argv = commands.import_from(
                    vmid, slot, storage, source, boot=boot, digest=self._digest(config)
                )
                result = await self._run(argv, timeout_s=self.import_timeout_s)
                return parse_import_from_output(
                    result.stdout, slot, command=f"qm set {vmid} --{slot} import-from"
                )
            legacy = self.dialect.legacy_disk_commands
            argv = commands.import_disk(vmid, source, storage, image_format=image_format, legacy=legacy)
            result = await self._run(argv, timeout_s=self.import_timeout_s)
            imported = parse_import_output(result.stdout, command=" ".join(argv[:4]))
            volume = imported.volume if ":" in imported.volume else f"{storage}:{imported.volume}"
            await self._run(commands.attach_disk(vmid, slot, volume, boot=boot))
            return ImportedDisk(slot=slot, volume=volume)

        return await self._retrying(f"import disk into VM {vmid}", once, idempotent=True)

    async def resize_disk(self, vmid: int, owner_uid: str, slot: str, size_gib: int) -> bool:
        """Grow `slot` to `size_gib` GiB. Same size → no call, False. Smaller → DiskShrinkRefused, no call.

        A resize task's failure may not reach qm's exit status (pve-cli-facts §6), so the size is verified after.
        """
        target = size_gib * 1024**3

        def build(cfg: VmConfig) -> list[str] | None:
            drive = cfg.drives(pending=False).get(slot)
            if drive is None:
                raise DiskNotFound(f"VM {vmid} has no disk {slot}", node=self.node)
            current = drive.size_bytes
            if current is not None and target < current:
                raise DiskShrinkRefused(
                    f"VM {vmid} {slot} is {current / 1024**3:g} GiB; shrinking to {size_gib} GiB is not supported",
                    node=self.node,
                )
            if current == target:
                return None
            return commands.resize_disk(vmid, slot, size_gib, legacy=self.dialect.legacy_disk_commands)

        _, result = await self._mutate(f"resize VM {vmid} {slot}", vmid, owner_uid, build)
        if result is None:
            return False
        after = (await self.read_config(vmid)).drives(pending=False).get(slot)
        if after is None or (after.size_bytes or 0) < target:
            raise CommandFailed(
                f"resize of VM {vmid} {slot} to {size_gib}G did not take effect: {result.stderr.strip()[:300]}",
                node=self.node,
            )
        return True

    # --- power -------------------------------------------------------------------------------------------------------

    async def start_vm(self, vmid: int, owner_uid: str) -> None:
        """Start (pending changes apply). Already running → success."""
        try:
            await self._mutate(f"start VM {vmid}", vmid, owner_uid, lambda _: commands.start_vm(vmid))
        except WrongPowerState as exc:
            if "already running" not in exc.message:
                raise

    async def stop_vm(self, vmid: int, owner_uid: str) -> None:
        """Hard stop (qm stop is silent on a stopped VM)."""
        await self._mutate(f"stop VM {vmid}", vmid, owner_uid, lambda _: commands.stop_vm(vmid))

    async def shutdown_vm(
        self, vmid: int, owner_uid: str, *, timeout_s: int = 60, force_stop: bool = False
    ) -> None:
        """ACPI shutdown; OperationTimeout (transient) when the guest ignores it and `force_stop` is off."""
        await self._mutate(
            f"shutdown VM {vmid}",
            vmid,
            owner_uid,
            lambda _: commands.shutdown_vm(vmid, timeout_s=timeout_s, force_stop=force_stop),
            timeout_s=timeout_s + 60,
        )

    async def reboot_vm(self, vmid: int, owner_uid: str, *, timeout_s: int | None = None) -> None:
        """Reboot (applies pending changes). Not retried after an ambiguous failure (it would reboot twice)."""
        await self._mutate(
            f"reboot VM {vmid}",
            vmid,
            owner_uid,
            lambda _: commands.reboot_vm(vmid, timeout_s=timeout_s),
            idempotent=False,
            timeout_s=(timeout_s or 600) + 60,
        )

    # --- destroy -----------------------------------------------------------------------------------------------------

    async def destroy_vm(self, vmid: int, owner_uid: str, *, stop_first: bool = True) -> bool:
        """Destroy an owned VM with all its disks (`--purge --destroy-unreferenced-disks`).

        Returns False when the VM is already gone from this node. Protection → ProtectionEnabled before any call.
        """

        async def once(_: int) -> bool:
            try:
                config = await self._owned(vmid, owner_uid)
            except VmNotFound:
                return False
            if config.protection:
                raise ProtectionEnabled(
                    f"VM {vmid} has protection enabled; not destroying it", node=self.node
                )
            if stop_first:
                await self._run(commands.stop_vm(vmid))
            try:
                await self._run(commands.destroy_vm(vmid), timeout_s=self.import_timeout_s)
            except VmNotFound:
                return False
            return True

        return await self._retrying(f"destroy VM {vmid}", once, idempotent=True)


def _size(drive: Drive) -> int | None:
    try:
        return drive.size_bytes
    except ValueError:
        return None
