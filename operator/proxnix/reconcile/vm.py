"""ProxmoxVM reconcile steps: observe → plan → act → report, and the deletion steps. No kopf here.

Every step is idempotent: the plan is recomputed from what the node reports, the driver's create is idempotent by
the ownership marker, and a resize, start or stop re-checks the node first. A crash between any two `qm` calls
therefore converges on the next run without a second VM or an orphaned disk.

Safety rules enforced here and again in the driver: nothing is changed or destroyed on a VM without our marker for
this object's uid; an unreachable node never leads to a destroy; a protected VM is never destroyed or reimaged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from proxnix.adapters.image_upload import UploadResult, upload_image
from proxnix.adapters.local_images import LocalImageError, LocalImages
from proxnix.api.meta import ANNOTATION_REQUESTED_AT
from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.proxmox.definition import definition_from_spec
from proxnix.proxmox.errors import (
    AgentNotRunning,
    ConnectionLost,
    NodeUnreachable,
    PermanentError,
    ProxmoxError,
    TransientError,
)
from proxnix.proxmox.guest_agent import GuestInterface
from proxnix.proxmox.inventory import VmObservation
from proxnix.proxmox.ownership import Owner
from proxnix.proxmox.plan import Action, ActionKind, DesiredVM, VmPlan, plan_vm
from proxnix.reconcile.nodes import NodeDirectory, NodeHandle, Seen
from proxnix.reconcile.vm_delete import delete_vm
from proxnix.reconcile.vm_status import Problem, VmFacts, build_status, problem_from_plan, progress_status
from proxnix.reconcile.vm_types import DeleteOutcome, VmEvent, VmOutcome, VmRef, provisioned, short

log = logging.getLogger(__name__)

# How old an inventory may be before the operator acts on it (a plan with actions is re-made on a fresh view).
ACT_MAX_AGE_S = 1.0
# Reports progress (a status patch) before a reconcile starts acting on the node.
Progress = Callable[[dict[str, Any]], Awaitable[None]]
# How often a running VM's addresses are re-read from the guest agent once known.
AGENT_REFRESH_S = 600.0
# How long a reboot (for pending changes) may wait for the guest before qm gives up (and the next run retries).
REBOOT_TIMEOUT_S = 120


_EVENT_REASONS = {
    ActionKind.CREATE: "Created",
    ActionKind.SET: "Updated",
    ActionKind.RESIZE: "Resized",
    ActionKind.START: "Started",
    ActionKind.SHUTDOWN: "ShutDown",
    ActionKind.STOP: "Stopped",
    ActionKind.REBOOT: "Rebooted",
    ActionKind.DESTROY: "Destroyed",
}


def usable_addresses(interfaces: Sequence[GuestInterface]) -> list[str]:
    """Addresses worth showing: not loopback, not link-local; IPv4 first."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for iface in interfaces:
        for addr in iface.addresses:
            try:
                ip = ipaddress.ip_address(addr.address)
            except ValueError:
                continue
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
                continue
            found.append(ip)
    return [str(ip) for ip in sorted(set(found), key=lambda ip: (ip.version, int(ip)))]


class VmReconciler:
    """Reconciles ProxmoxVMs against their nodes. One per operator (in the kopf memo)."""

    def __init__(self, nodes: NodeDirectory, images: LocalImages) -> None:
        self.nodes = nodes
        self.images = images
        self._agent_seen: dict[str, tuple[float, list[str]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock_for(self, uid: str) -> asyncio.Lock:
        """The lock that serialises everything done for one ProxmoxVM (change handlers, resync timer, delete)."""
        return self._locks.setdefault(uid, asyncio.Lock())

    def busy(self, uid: str) -> bool:
        """Whether a reconcile of this ProxmoxVM is running now (a resync then skips it)."""
        lock = self._locks.get(uid)
        return lock is not None and lock.locked()

    def forget(self, uid: str) -> None:
        """Drop per-object state after the object is gone."""
        self._locks.pop(uid, None)
        self._agent_seen.pop(uid, None)

    def _node(self, vm: VmRef) -> NodeHandle | None:
        return self.nodes.get(vm.namespace, vm.spec.node)

    # --- reconcile --------------------------------------------------------------------------------------------------

    async def reconcile(
        self, vm: VmRef, *, max_age: float = 0.0, drift: bool = False, progress: Progress | None = None
    ) -> VmOutcome:
        """Observe the VM's node (an inventory no older than `max_age`), plan, act, and report.

        `progress` is called with a status patch (phase, Reconciling) before the first action, so that a long
        operation (an image upload, a reimage) shows in `kubectl get` while it runs."""
        facts = VmFacts(
            generation=vm.generation,
            node_name=vm.status.node or vm.spec.node,
            vmid=vm.spec.vmid,
            run_strategy=vm.spec.run_strategy,
            requested_at=vm.requested_at,
        )
        node = self._node(vm)
        if node is None:
            facts.problem = Problem(
                "NodeNotReady",
                f"ProxmoxNode {vm.spec.node!r} is not configured yet (missing, or its Secret is not readable)",
                stalled=False,
            )
            return VmOutcome(
                build_status(vm.status, facts), retry_after=5, retry_reason=facts.problem.message
            )
        facts.node_name = node.node_name
        outcome = VmOutcome(status=vm.status)
        async with self.lock_for(vm.uid):
            try:
                # harden (issue 10): everything done on the node is abandoned as soon as it stops answering
                await node.unless_down(
                    self._converge(vm, node, facts, outcome, max_age=max_age, drift=drift, progress=progress)
                )
            except LocalImageError as exc:
                # harden (issue 10): the reason says which (ImageSourceForbidden, ImageDownloading, ...);
                # a download in progress is looked at again soon, without holding this VM's lock meanwhile.
                facts.problem = Problem(exc.reason, str(exc), stalled=exc.permanent)
                if not exc.permanent:
                    delay = 5 if exc.reason == "ImageDownloading" else 30
                    outcome.retry_after, outcome.retry_reason = delay, str(exc)
            except (NodeUnreachable, ConnectionLost) as exc:
                facts.node_unreachable = True
                facts.problem = Problem("NodeUnreachable", short(exc), stalled=False)
                outcome.retry_after, outcome.retry_reason = 20, short(exc)
            except TransientError as exc:
                facts.problem = Problem(type(exc).__name__, short(exc), stalled=False)
                outcome.retry_after, outcome.retry_reason = 10, short(exc)
            except PermanentError as exc:
                facts.problem = Problem(type(exc).__name__, short(exc), stalled=True)
                outcome.events.append(VmEvent("Warning", type(exc).__name__, short(exc)))
            # harden (issue 10): a bug becomes a condition (its traceback in the log), not a silent traceback loop
            except Exception as exc:
                log.exception("%s/%s: unexpected error in reconcile", vm.namespace, vm.name)
                message = f"unexpected {type(exc).__name__}: {short(exc)} (see the operator log)"
                facts.problem = Problem("InternalError", message, stalled=False)
                outcome.retry_after, outcome.retry_reason = 60, message
                outcome.events.append(VmEvent("Warning", "InternalError", message))
        outcome.stalled = facts.problem is not None and facts.problem.stalled
        outcome.status = build_status(vm.status, facts)
        return outcome

    async def _converge(
        self,
        vm: VmRef,
        node: NodeHandle,
        facts: VmFacts,
        outcome: VmOutcome,
        *,
        max_age: float,
        drift: bool,
        progress: Progress | None,
    ) -> None:
        seen = await node.observe(max_age=max_age)
        self._record(facts, seen, None, vm)  # the status stays true even if planning or acting fails
        moved = _moved(vm, node)
        if moved is not None:
            facts.observation, facts.observed_at, facts.problem = None, "", moved
            return
        desired, plan, image_problem = await self._plan(vm, node, seen)
        self._record(facts, seen, plan, vm, image_problem)
        if plan.actions and seen.age > ACT_MAX_AGE_S:
            seen = await node.observe(max_age=0)  # never act on an old view
            desired, plan, image_problem = await self._plan(vm, node, seen)
            self._record(facts, seen, plan, vm, image_problem)
        if not plan.actions:
            await self._agent(vm, node, facts, outcome)
            return
        if drift and ActionKind.DESTROY in plan.kinds():
            facts.problem = Problem(
                "ReimagePending",
                "the image changed without a change of the spec; the VM is recreated on the next change of the "
                f"object or when it is annotated {ANNOTATION_REQUESTED_AT}",
                stalled=False,
            )
            return
        if progress is not None:
            await progress(progress_status(vm, plan))
        upload: UploadResult | None = None
        if ActionKind.CREATE in plan.kinds():
            upload = await self._upload(vm, node)  # before anything is destroyed
        for action in plan.actions:
            await self._act(vm, node, desired, action, outcome, upload=upload, drift=drift)
        seen = await node.observe(max_age=0)
        desired, plan, image_problem = await self._plan(vm, node, seen)
        self._record(facts, seen, plan, vm, image_problem)
        await self._agent(vm, node, facts, outcome)

    async def _plan(
        self, vm: VmRef, node: NodeHandle, seen: Seen
    ) -> tuple[DesiredVM, VmPlan, Problem | None]:
        desired, image_problem = await self._desired(vm, node.spec, seen.inventory.vms.get(vm.spec.vmid))
        return desired, plan_vm(desired, seen.inventory), image_problem

    def _record(
        self, facts: VmFacts, seen: Seen, plan: VmPlan | None, vm: VmRef, image_problem: Problem | None = None
    ) -> None:
        observed = seen.inventory.vms.get(vm.spec.vmid)
        facts.observation = observed
        facts.observed_at = seen.fetched_wall
        facts.owned = observed is not None and observed.ownership.owned_by(vm.uid)
        facts.plan = plan
        facts.problem = (problem_from_plan(plan) if plan is not None else None) or image_problem

    async def _upload(self, vm: VmRef, node: NodeHandle) -> UploadResult:
        image = await self.images.resolve(vm.spec.image.source, vm.spec.image.sha256)
        async with node.upload_lock(image.sha256):
            return await upload_image(
                node.pool, image.path, node.spec.image_cache_dir, expected_sha256=image.sha256, hashed=True
            )

    async def _desired(
        self, vm: VmRef, node_spec: ProxmoxNodeSpec, observed: VmObservation | None
    ) -> tuple[DesiredVM, Problem | None]:
        """The desired VM, and a problem to report when the image could not be read (the VM then keeps its own)."""
        definition = definition_from_spec(vm.spec, node_spec, vm.name)
        sha256, size, problem = await self._image_for_plan(vm, observed)
        desired = DesiredVM(
            definition=definition,
            owner=vm.owner,
            image_sha256=sha256,
            image_size_bytes=size,
            run_strategy=vm.spec.run_strategy,
            reboot_for_pending=vm.spec.reboot_for_pending_changes,
        )
        return desired, problem

    async def _image_for_plan(
        self, vm: VmRef, observed: VmObservation | None
    ) -> tuple[str, int, Problem | None]:
        """The sha256 and virtual size of the image the spec names. When the file cannot be read right now (gone,
        e.g. garbage-collected, or not there yet) and our VM exists, the plan keeps the VM on the image it was made
        from — it is updated in place but never reimaged on a guess — and the problem is reported."""
        try:
            image = await self.images.resolve(vm.spec.image.source, vm.spec.image.sha256)
        except LocalImageError as exc:
            if exc.permanent or observed is None or not observed.ownership.owned_by(vm.uid):
                raise
            size = int((observed.disk_gib or 0) * 1024**3)
            return observed.ownership.image_sha256, size, Problem(exc.reason, str(exc), stalled=False)
        return image.sha256, image.virtual_size_bytes, None

    async def _act(
        self,
        vm: VmRef,
        node: NodeHandle,
        desired: DesiredVM,
        action: Action,
        outcome: VmOutcome,
        *,
        upload: UploadResult | None,
        drift: bool,
    ) -> None:
        client = node.client
        vmid = desired.definition.vmid
        uid = vm.uid
        started = time.monotonic()
        try:
            if action.kind == ActionKind.CREATE:
                assert upload is not None
                await self._create(node, desired, vm.owner, upload)
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
        finally:
            node.invalidate()
            if action.kind != ActionKind.SET and action.kind != ActionKind.RESIZE:
                self._agent_seen.pop(uid, None)  # addresses change with the guest's life
        took = time.monotonic() - started
        # harden (issue 10): the first creation of a VM is not drift, even when a resync does it.
        first_create = action.kind == ActionKind.CREATE and not provisioned(vm.status)
        prefix = "drift: " if drift and not first_create else ""
        outcome.events.append(
            VmEvent(
                "Normal",
                _EVENT_REASONS[action.kind],
                f"{prefix}{action.reason} (VM {vmid} on {node.node_name}, {took:.1f} s)",
            )
        )
        log.info("%s/%s: %s: %s", vm.namespace, vm.name, action.kind, action.reason)

    async def _agent(self, vm: VmRef, node: NodeHandle, facts: VmFacts, outcome: VmOutcome) -> None:
        """Read the VM's addresses from the guest agent when they are unknown or stale (one qm call)."""
        obs = facts.observation
        if not facts.owned or obs is None or obs.power_state != "running":
            self._agent_seen.pop(vm.uid, None)
            return
        if obs.config is not None and not obs.config.agent_enabled:
            facts.agent = ("False", "AgentNotConfigured", "the VM has no guest agent configured")
            return
        seen = self._agent_seen.get(vm.uid)
        if seen is not None and seen[1] and time.monotonic() - seen[0] < AGENT_REFRESH_S:
            facts.ip_addresses = seen[1]
            facts.agent = ("True", "AgentRunning", "the guest agent answers")
            return
        try:
            interfaces = await node.client.guest_interfaces(vm.spec.vmid)
        except AgentNotRunning as exc:
            facts.agent = ("False", "AgentNotRunning", short(exc))
            outcome.waiting_for_agent = True
            return
        except ProxmoxError as exc:
            facts.agent = ("Unknown", type(exc).__name__, short(exc))
            return
        facts.ip_addresses = usable_addresses(interfaces)
        self._agent_seen[vm.uid] = (time.monotonic(), facts.ip_addresses)
        facts.agent = ("True", "AgentRunning", "the guest agent answers")

    # --- delete ----------------------------------------------------------------------------------------------------

    async def delete(self, vm: VmRef) -> DeleteOutcome:
        """Destroy the VM if policy allows and it is ours; never on doubt (see `vm_delete`)."""
        async with self.lock_for(vm.uid):
            return await delete_vm(self.nodes, vm)

    async def _create(self, node: NodeHandle, desired: DesiredVM, owner: Owner, upload: UploadResult) -> None:
        """Create the VM with its boot disk: one `qm create ... import-from=` (PVE 7.2+), else create then
        `qm importdisk` and attach (older nodes)."""
        client = node.client
        if _version(node.pve_version) >= (7, 2):
            await client.create_vm(
                desired.definition, owner, image_sha256=desired.image_sha256, import_from=upload.remote_path
            )
            return
        await client.create_vm(desired.definition, owner, image_sha256=desired.image_sha256)
        node.invalidate()
        await client.import_image(
            desired.definition.vmid,
            owner.uid,
            upload.remote_path,
            slot=desired.definition.disk_slot,
            storage=desired.definition.disk_storage,
            method="importdisk",
            image_format=upload.format,
        )


def _version(text: str) -> tuple[int, int]:
    """(major, minor) of a PVE version string; unknown versions count as current."""
    parts = re.findall(r"[0-9]+", text)[:2]
    if not parts:
        return (8, 0)
    return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)


def _moved(vm: VmRef, node: NodeHandle) -> Problem | None:
    """A provisioned VM whose spec now names another VMID or node: proxnix does not move VMs."""
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
