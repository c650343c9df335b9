"""The VM plan: what the VM should be (a resolved definition, its owner, its image) and what the node reports,
turned into the ordered actions that converge them — or the blockers that say why the operator will not act.

Pure: no I/O. Every action is idempotent when re-planned from a fresh observation, so a crash between two actions
converges on the next reconcile (a VM created but not yet resized plans a resize; one resized but not started plans
a start). Blockers never destroy anything: a VMID held by a VM without our marker, a protected VM whose image
changed, or a smaller disk are reported and left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from proxnix.api.proxmoxvm import RunStrategy
from proxnix.proxmox.commands import ConfigValue
from proxnix.proxmox.definition import VmDefinition
from proxnix.proxmox.inventory import NodeInventory, VmObservation
from proxnix.proxmox.ownership import Owner, marker_description, ownership_tags
from proxnix.proxmox.propstring import NetDevice

GIB = 1024**3
# Keys Proxmox leaves pending on a running VM until it is restarted (pve-cli-facts §8).
RESTART_KEYS = frozenset({"cores", "sockets", "memory", "cpu", "machine", "scsihw"})


class ActionKind(StrEnum):
    """What one step does on the node."""

    CREATE = "Create"
    SET = "Set"
    RESIZE = "Resize"
    START = "Start"
    SHUTDOWN = "Shutdown"
    STOP = "Stop"
    REBOOT = "Reboot"
    DESTROY = "Destroy"


class BlockReason(StrEnum):
    """Why the operator will not (yet) converge the VM."""

    VMID_CONFLICT = "VMIDConflict"
    IMAGE_CHANGE_BLOCKED = "ImageChangeBlocked"
    DISK_SHRINK_REFUSED = "DiskShrinkRefused"
    VM_LOCKED = "VMLocked"
    IMAGE_TOO_LARGE = "ImageLargerThanDisk"
    IMAGE_UNKNOWN = "ImageUnknown"
    CONFIG_UNREADABLE = "ConfigUnreadable"


@dataclass(frozen=True)
class Action:
    """One step, with the reason a user reads in the Event."""

    kind: ActionKind
    reason: str
    options: Mapping[str, ConfigValue] = field(default_factory=dict)
    size_gib: int | None = None


@dataclass(frozen=True)
class Blocker:
    """Something that stops convergence. `transient` blockers clear by themselves (a backup's lock)."""

    reason: BlockReason
    message: str
    transient: bool = False


@dataclass(frozen=True)
class DesiredVM:
    """The VM the operator wants, fully resolved."""

    definition: VmDefinition
    owner: Owner
    image_sha256: str
    image_size_bytes: int
    run_strategy: RunStrategy
    reboot_for_pending: bool = False

    @property
    def tags(self) -> list[str]:
        return ownership_tags(self.image_sha256, self.definition.tags)


@dataclass(frozen=True)
class VmPlan:
    """The ordered actions and the blockers; `restart_required` lists keys that stay pending after the plan."""

    actions: tuple[Action, ...] = ()
    blockers: tuple[Blocker, ...] = ()
    restart_required: tuple[str, ...] = ()
    reimage: bool = False

    @property
    def in_sync(self) -> bool:
        return not self.actions and not self.blockers

    def kinds(self) -> list[ActionKind]:
        return [a.kind for a in self.actions]


def plan_vm(desired: DesiredVM, inventory: NodeInventory) -> VmPlan:
    """The plan for one VM on the node `inventory` was read from."""
    vmid = desired.definition.vmid
    observed = inventory.vms.get(vmid)
    if observed is None:
        holder = inventory.vmid_holder(vmid)
        if holder is not None and holder != inventory.node:
            return VmPlan(
                blockers=(
                    Blocker(
                        BlockReason.VMID_CONFLICT,
                        f"VMID {vmid} is used by a VM on node {holder!r}; choose another vmid or move that VM",
                    ),
                )
            )
        return _plan_create(desired, reimage=False)

    if observed.config is None:
        return VmPlan(
            blockers=(
                Blocker(
                    BlockReason.CONFIG_UNREADABLE,
                    f"the config of VM {vmid} on {observed.node!r} could not be read ({observed.error}); "
                    "nothing was changed",
                    transient=True,
                ),
            )
        )
    if observed.lock == "create" and observed.ownership.owner is None:
        # `qm create` writes a placeholder (only `lock: create`) before the real config: a create in progress.
        return VmPlan(
            blockers=(
                Blocker(
                    BlockReason.VM_LOCKED,
                    f"VM {vmid} is being created on {observed.node!r} (lock: create); waiting for it to finish",
                    transient=True,
                ),
            )
        )
    conflict = _ownership_blocker(desired, observed)
    if conflict is not None:
        return VmPlan(blockers=(conflict,))
    if observed.lock:
        return VmPlan(
            blockers=(
                Blocker(
                    BlockReason.VM_LOCKED,
                    f"VM {vmid} is locked ({observed.lock}); waiting for the lock to go",
                    transient=True,
                ),
            )
        )
    if observed.ownership.image_sha256 != desired.image_sha256:
        return _plan_image_change(desired, observed)
    return _plan_update(desired, observed)


def _ownership_blocker(desired: DesiredVM, observed: VmObservation) -> Blocker | None:
    if observed.ownership.owned_by(desired.owner.uid):
        return None
    vmid = desired.definition.vmid
    if observed.ownership.owner is not None:
        why = f"it belongs to {observed.ownership.owner}"
    elif observed.ownership.legacy:
        why = "it carries the 'proxnix' tag but no ownership block (made by another tool?)"
    else:
        why = "it was not created by proxnix"
    return Blocker(
        BlockReason.VMID_CONFLICT,
        f"VMID {vmid} on node {observed.node!r} is taken by VM {observed.name or vmid!r}: {why}; nothing was changed",
    )


def _initial_power(desired: DesiredVM) -> list[Action]:
    if desired.run_strategy in (RunStrategy.ALWAYS, RunStrategy.RERUN_ON_FAILURE):
        return [Action(ActionKind.START, f"runStrategy {desired.run_strategy}")]
    return []


def _disk_actions(desired: DesiredVM, current_bytes: int | None) -> tuple[list[Action], list[Blocker]]:
    want = desired.definition.disk_size_gib
    if want is None:
        return [], []
    want_bytes = want * GIB
    have = current_bytes if current_bytes is not None else desired.image_size_bytes
    if want_bytes > have:
        return [Action(ActionKind.RESIZE, f"disk {_gib(have)} GiB → {want} GiB", size_gib=want)], []
    if want_bytes < have:
        reason = BlockReason.IMAGE_TOO_LARGE if current_bytes is None else BlockReason.DISK_SHRINK_REFUSED
        return [], [
            Blocker(
                reason,
                f"disk.sizeGiB {want} is smaller than the disk ({_gib(have)} GiB); disks are never shrunk",
            )
        ]
    return [], []


def _plan_create(desired: DesiredVM, *, reimage: bool) -> VmPlan:
    resize, blockers = _disk_actions(desired, None)
    if blockers:
        return VmPlan(blockers=tuple(blockers))
    short = desired.image_sha256[:12]
    actions = [
        Action(ActionKind.CREATE, f"create VM {desired.definition.vmid} from image {short}"),
        *resize,
        *_initial_power(desired),
    ]
    return VmPlan(actions=tuple(actions), reimage=reimage)


def _plan_image_change(desired: DesiredVM, observed: VmObservation) -> VmPlan:
    """Reimage (stop, destroy, create from the new image) — unless the VM is protected, the old image is unknown,
    or the new VM could not be created; then the VM is kept and updated in place as far as it can be."""
    old = observed.ownership.image_sha256[:12]
    new = desired.image_sha256[:12]
    blocker: Blocker | None = None
    if not old:
        blocker = Blocker(
            BlockReason.IMAGE_UNKNOWN,
            "the VM's ownership notes do not say which image it was made from; not reimaging it "
            "(recreate the object to rebuild the VM)",
        )
    elif desired.definition.protection:
        blocker = Blocker(
            BlockReason.IMAGE_CHANGE_BLOCKED,
            f"image changed ({old} → {new}) but the VM is protected: not reimaged; "
            "unset spec.protected to allow recreating it",
        )
    else:
        create = _plan_create(desired, reimage=True)
        if create.blockers:
            blocker = create.blockers[0]
        else:
            actions: list[Action] = []
            if observed.protection:
                actions.append(
                    Action(ActionKind.SET, "protection 1 → 0 (reimage)", options={"protection": False})
                )
            if observed.power_state != "stopped":
                actions.append(Action(ActionKind.STOP, f"reimage {old} → {new}"))
            actions.append(Action(ActionKind.DESTROY, f"reimage {old} → {new}"))
            return VmPlan(actions=(*actions, *create.actions), reimage=True)
    # Keep the VM on the image it has: plan everything else against that image.
    kept = _plan_update(replace(desired, image_sha256=observed.ownership.image_sha256), observed)
    return replace(kept, blockers=(blocker, *kept.blockers))


def config_changes(desired: DesiredVM, observed: VmObservation) -> dict[str, ConfigValue]:
    """The `qm set` options that bring the observed config to the definition (values as qm config shows them)."""
    d = desired.definition
    config = observed.config
    if config is None:
        return {}
    changes: dict[str, ConfigValue] = {}
    if config.name != d.name:
        changes["name"] = d.name
    if config.cores() != d.cores:
        changes["cores"] = d.cores
    if config.sockets() != d.sockets:
        changes["sockets"] = d.sockets
    if config.memory_mib() != d.memory_mib:
        changes["memory"] = d.memory_mib
    if config.onboot != d.onboot:
        changes["onboot"] = d.onboot
    if config.protection != d.protection:
        changes["protection"] = d.protection
    if (config.get("scsihw") or "lsi") != d.scsihw:
        changes["scsihw"] = d.scsihw
    if sorted(t.lower() for t in config.tags) != desired.tags:
        changes["tags"] = ";".join(desired.tags)
    net0 = config.nics().get("net0")
    if net0 is not None and (net0.model != d.net_model or net0.bridge != d.bridge):
        changes["net0"] = _net0_keeping_mac(net0, d)
    description = marker_description(desired.owner, desired.image_sha256, keep=config.description)
    if config.description.strip() != description.strip():
        changes["description"] = description
    return changes


def _net0_keeping_mac(current: NetDevice, d: VmDefinition) -> str:
    options = {k: v for k, v in current.options.items() if k != "bridge"}
    extra = "".join(f",{k}={v}" for k, v in sorted(options.items()))
    return f"{d.net_model}={current.mac},bridge={d.bridge}{extra}"


def _describe(changes: Mapping[str, ConfigValue], observed: VmObservation) -> str:
    parts = []
    for key in sorted(changes):
        if key == "description":
            parts.append("ownership notes")
            continue
        before = observed.config.get(key) if observed.config else None
        parts.append(f"{key} {before if before is not None else '-'} → {changes[key]}")
    return ", ".join(parts)


def _plan_update(desired: DesiredVM, observed: VmObservation) -> VmPlan:
    actions: list[Action] = []
    blockers: list[Blocker] = []
    changes = config_changes(desired, observed)
    if changes:
        actions.append(Action(ActionKind.SET, _describe(changes, observed), options=changes))
    current_bytes = observed.config.disk_size_bytes(desired.definition.disk_slot) if observed.config else None
    resize, disk_blockers = _disk_actions(desired, current_bytes)
    actions += resize
    blockers += disk_blockers

    running = observed.power_state == "running"
    pending = set(observed.pending_keys)
    if running:
        pending |= RESTART_KEYS & set(changes)
    pending &= RESTART_KEYS | {"net0"}
    restart_required: tuple[str, ...] = ()
    strategy = desired.run_strategy
    if running and strategy == RunStrategy.HALTED:
        actions.append(Action(ActionKind.SHUTDOWN, "runStrategy Halted"))
    elif running and pending:
        if desired.reboot_for_pending and strategy != RunStrategy.MANUAL:
            actions.append(Action(ActionKind.REBOOT, f"apply pending changes ({', '.join(sorted(pending))})"))
        else:
            restart_required = tuple(sorted(pending))
    elif observed.power_state == "stopped" and strategy == RunStrategy.ALWAYS:
        actions.append(Action(ActionKind.START, "runStrategy Always"))
    return VmPlan(actions=tuple(actions), blockers=tuple(blockers), restart_required=restart_required)


def _gib(size_bytes: int) -> str:
    value = size_bytes / GIB
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"
