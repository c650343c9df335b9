"""The VM reconcile's steps, each a function of its inputs with its I/O behind `ports` (run in order by
`reconciler.VmReconciler.reconcile`):

1. `observe` — the node's inventory (from the cache, no older than asked); `moved` refuses a provisioned VM
   whose spec now names another VMID or node;
2. `plan` — the desired VM (spec + node defaults + image) against the observation: actions or blockers
   (`proxnix.proxmox.plan`, pure). An image the operator cannot read right now keeps our VM on its own image;
3. `act` — upload the image first (before anything is destroyed), then each action; every change is checked
   against the ownership marker again by the node client;
4. `read_agent` — the guest agent's addresses when unknown or stale (one qm call);
then `status.build_status` reports.

Safety rules: nothing is changed or destroyed on a VM without our marker for this object's uid (the plan blocks
with VMIDConflict; the client refuses NotOwned); nothing is done on a node that cannot be read (observe raises,
the status goes Unknown); a protected VM is never destroyed or reimaged (the plan blocks with ImageChangeBlocked;
the client refuses ProtectionEnabled); a reimage noticed by a resync only (no change of the object) waits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from proxnix.adapters.image_upload import UploadResult
from proxnix.adapters.local_images import LocalImageError
from proxnix.api.conditions import ConditionStatus
from proxnix.api.summarize import Problem
from proxnix.proxmox.definition import definition_from_spec
from proxnix.proxmox.errors import AgentNotRunning, ProxmoxError
from proxnix.proxmox.guest_agent import routable_addresses
from proxnix.proxmox.inventory import VmObservation
from proxnix.proxmox.plan import Action, ActionKind, DesiredVM, VmPlan, plan_vm
from proxnix.reconcile.node_directory import Seen
from proxnix.reconcile.outcome import Event, short
from proxnix.reconcile.vm.ports import Images, VmNode
from proxnix.reconcile.vm.ref import VmRef, provisioned
from proxnix.reconcile.vm.status import problem_from_plan

log = logging.getLogger(__name__)

# How long a reboot (for pending changes) may wait for the guest before qm gives up (and the next run retries).
REBOOT_TIMEOUT_S = 120
# How often a running VM's addresses are re-read from the guest agent once known.
AGENT_REFRESH_S = 600.0

EVENT_REASONS = {
    ActionKind.CREATE: "Created",
    ActionKind.SET: "Updated",
    ActionKind.RESIZE: "Resized",
    ActionKind.START: "Started",
    ActionKind.SHUTDOWN: "ShutDown",
    ActionKind.STOP: "Stopped",
    ActionKind.REBOOT: "Rebooted",
    ActionKind.DESTROY: "Destroyed",
}


# --- 1. observe ---------------------------------------------------------------------------------------------------


async def observe(node: VmNode, max_age: float) -> Seen:
    """The node's inventory, no older than `max_age` seconds (0: fetched after the last change made on it)."""
    return await node.observe(max_age=max_age)


def moved(vm: VmRef, node: VmNode) -> Problem | None:
    """A provisioned VM whose spec now names another VMID or node: proxnix does not move VMs (stalls)."""
    if not provisioned(vm.status):
        return None
    if vm.status.vmid is not None and vm.status.vmid != vm.spec.vmid:
        what = f"spec.vmid changed from {vm.status.vmid} to {vm.spec.vmid}"
    elif vm.status.node and vm.status.node != node.node_name:
        what = f"spec.node now names node {node.node_name!r}, but the VM is on {vm.status.node!r}"
    else:
        return None
    return Problem(
        "ImmutableField",
        f"{what}; proxnix does not move or renumber VMs: restore the old value, or delete the object "
        "and create a new one",
        stalled=True,
    )


# --- 2. plan ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What `plan` made of one observation: the desired VM, the plan, and the problem to report (a blocker, or
    an image that could not be read)."""

    seen: Seen
    desired: DesiredVM
    plan: VmPlan
    problem: Problem | None

    @property
    def observed(self) -> VmObservation | None:
        return self.seen.inventory.vms.get(self.desired.definition.vmid)


async def plan(vm: VmRef, node: VmNode, images: Images, seen: Seen) -> Decision:
    """The plan for `vm` on the node as `seen`."""
    observed = seen.inventory.vms.get(vm.spec.vmid)
    sha256, size, image_problem = await _image_for_plan(vm, images, observed)
    desired = DesiredVM(
        definition=definition_from_spec(vm.spec, node.spec, vm.name),
        owner=vm.owner,
        image_sha256=sha256,
        image_size_bytes=size,
        run_strategy=vm.spec.run_strategy,
        reboot_for_pending=vm.spec.reboot_for_pending_changes,
    )
    vm_plan = plan_vm(desired, seen.inventory)
    return Decision(seen, desired, vm_plan, problem_from_plan(vm_plan) or image_problem)


async def _image_for_plan(
    vm: VmRef, images: Images, observed: VmObservation | None
) -> tuple[str, int, Problem | None]:
    """The sha256 and virtual size of the image the spec names. When the file cannot be read right now (gone,
    e.g. garbage-collected, or not there yet) and our VM exists, the plan keeps the VM on the image it was made
    from — it is updated in place but never reimaged on a guess — and the problem is reported."""
    try:
        image = await images.resolve(vm.spec.image.source, vm.spec.image.sha256)
    except LocalImageError as exc:
        if exc.permanent or observed is None or not observed.ownership.owned_by(vm.uid):
            raise
        size = int((observed.disk_gib or 0) * 1024**3)
        return observed.ownership.image_sha256, size, Problem(exc.reason, str(exc), stalled=False)
    return image.sha256, image.virtual_size_bytes, None


@dataclass
class AgentCache:
    """The addresses last read per ProxmoxVM uid (monotonic time, addresses); re-read after `AGENT_REFRESH_S`."""

    seen: dict[str, tuple[float, list[str]]] = field(default_factory=dict)

    def forget(self, uid: str) -> None:
        self.seen.pop(uid, None)


# --- 3. act -------------------------------------------------------------------------------------------------------


async def act(
    vm: VmRef,
    node: VmNode,
    images: Images,
    decision: Decision,
    events: list[Event],
    agent: AgentCache,
    *,
    drift: bool,
) -> None:
    """Run the plan's actions in order, appending one Event per completed action to `events` (kept when a later
    action fails). The image is uploaded before anything else, so a reimage never destroys before it can create."""
    upload: UploadResult | None = None
    if ActionKind.CREATE in decision.plan.kinds():
        image = await images.resolve(vm.spec.image.source, vm.spec.image.sha256)
        upload = await node.upload(image)
    for action in decision.plan.actions:
        started = time.monotonic()
        try:
            await _run(vm, node, decision.desired, action, upload)
        finally:
            node.invalidate()
            if action.kind not in (ActionKind.SET, ActionKind.RESIZE):
                agent.forget(vm.uid)  # addresses change with the guest's life
        took = time.monotonic() - started
        # harden (issue 10): the first creation of a VM is not drift, even when a resync does it.
        first_create = action.kind == ActionKind.CREATE and not provisioned(vm.status)
        prefix = "drift: " if drift and not first_create else ""
        events.append(
            Event(
                "Normal",
                EVENT_REASONS[action.kind],
                f"{prefix}{action.reason} (VM {decision.desired.definition.vmid} on {node.node_name}, {took:.1f} s)",
            )
        )
        log.info("%s/%s: %s: %s", vm.namespace, vm.name, action.kind, action.reason)


async def _run(
    vm: VmRef, node: VmNode, desired: DesiredVM, action: Action, upload: UploadResult | None
) -> None:
    client = node.client
    vmid = desired.definition.vmid
    uid = vm.uid
    if action.kind == ActionKind.CREATE:
        assert upload is not None
        await _create(node, desired, upload)
    elif action.kind == ActionKind.SET:
        await client.update_vm(vmid, uid, action.options)
    elif action.kind == ActionKind.RESIZE:
        assert action.size_gib is not None
        await client.resize_disk(vmid, uid, desired.definition.disk_slot, action.size_gib)
    elif action.kind == ActionKind.START:
        await client.start_vm(vmid, uid)
    elif action.kind == ActionKind.SHUTDOWN:
        await client.shutdown_vm(vmid, uid, force_stop=True)
    elif action.kind == ActionKind.STOP:
        await client.stop_vm(vmid, uid)
    elif action.kind == ActionKind.REBOOT:
        await client.reboot_vm(vmid, uid, timeout_s=REBOOT_TIMEOUT_S)
    elif action.kind == ActionKind.DESTROY:
        await client.destroy_vm(vmid, uid, stop_first=True)


async def _create(node: VmNode, desired: DesiredVM, upload: UploadResult) -> None:
    """Create the VM with its boot disk: one `qm create ... import-from=` where the node's dialect has it (PVE
    7.2+), else create then `qm importdisk` and attach."""
    client = node.client
    if client.dialect.import_from:
        await client.create_vm(
            desired.definition,
            desired.owner,
            image_sha256=desired.image_sha256,
            import_from=upload.remote_path,
        )
        return
    await client.create_vm(desired.definition, desired.owner, image_sha256=desired.image_sha256)
    node.invalidate()
    await client.import_image(
        desired.definition.vmid,
        desired.owner.uid,
        upload.remote_path,
        slot=desired.definition.disk_slot,
        storage=desired.definition.disk_storage,
        method="importdisk",
        image_format=upload.format,
    )


# --- 4. the guest agent -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentReading:
    """AgentConnected (status, reason, message), the addresses if read, and whether to poll again soon."""

    condition: tuple[ConditionStatus, str, str] | None = None
    addresses: list[str] | None = None
    waiting: bool = False


async def read_agent(
    vm: VmRef, node: VmNode, observed: VmObservation | None, cache: AgentCache
) -> AgentReading:
    """Read the VM's addresses from the guest agent when they are unknown or stale (one qm call)."""
    if observed is None or not observed.ownership.owned_by(vm.uid) or observed.power_state != "running":
        cache.forget(vm.uid)
        return AgentReading()
    if observed.config is not None and not observed.config.agent_enabled:
        return AgentReading(("False", "AgentNotConfigured", "the VM has no guest agent configured"))
    known = cache.seen.get(vm.uid)
    if known is not None and known[1] and time.monotonic() - known[0] < AGENT_REFRESH_S:
        return AgentReading(("True", "AgentRunning", "the guest agent answers"), known[1])
    try:
        interfaces = await node.client.guest_interfaces(vm.spec.vmid)
    except AgentNotRunning as exc:
        return AgentReading(("False", "AgentNotRunning", short(exc)), waiting=True)
    except ProxmoxError as exc:
        return AgentReading(("Unknown", exc.reason, short(exc)))
    addresses = routable_addresses(interfaces)
    cache.seen[vm.uid] = (time.monotonic(), addresses)
    return AgentReading(("True", "AgentRunning", "the guest agent answers"), addresses)
