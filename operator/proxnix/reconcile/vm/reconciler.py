"""ProxmoxVM reconcile: the steps of `steps` in order — observe → plan → act → report — and the deletion
(`delete`), serialised per object. No kopf here; the handlers apply the returned `Outcome`.

Every step is idempotent: the plan is recomputed from what the node reports, the driver's create is idempotent by
the ownership marker, and a resize, start or stop re-checks the node first. A crash between any two `qm` calls
therefore converges on the next run without a second VM or an orphaned disk.

The order, with each value produced once and never changed after: observe (again, fresh, when acting on a view
older than `ACT_MAX_AGE_S`), plan, act, observe and plan again to report what acting did, read the agent, report.
A failure reports the last observation and plan made before it, with the failure as the problem.
"""

from __future__ import annotations

import asyncio

from proxnix.adapters.local_images import LocalImageError
from proxnix.api.conditions import ConditionType, find_condition
from proxnix.api.meta import ANNOTATION_REQUESTED_AT
from proxnix.api.proxmoxvm import READINESS, Phase, ProxmoxVMStatus
from proxnix.api.summarize import Problem, summarize
from proxnix.proxmox.errors import ConnectionLost, NodeUnreachable, PermanentError, TransientError
from proxnix.proxmox.plan import ActionKind
from proxnix.reconcile.outcome import (
    AGENT_WAIT,
    IMAGE_NOT_READY,
    NODE_NOT_READY,
    NODE_TRANSIENT,
    NODE_UNREACHABLE,
    Event,
    Outcome,
    Progress,
    Retry,
)
from proxnix.reconcile.vm import steps
from proxnix.reconcile.vm.delete import delete_vm
from proxnix.reconcile.vm.ports import Images, VmNodes
from proxnix.reconcile.vm.ref import VmRef, short
from proxnix.reconcile.vm.status import VmFacts, build_status, progress_status

# How old an inventory may be before the operator acts on it (a plan with actions is re-made on a fresh view).
ACT_MAX_AGE_S = 1.0


class VmReconciler:
    """Reconciles ProxmoxVMs against their nodes. One per operator (in the kopf memo)."""

    def __init__(self, nodes: VmNodes, images: Images) -> None:
        self.nodes = nodes
        self.images = images
        self.agent = steps.AgentCache()
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
        self.agent.forget(uid)

    # --- reconcile --------------------------------------------------------------------------------------------------

    async def reconcile(
        self, vm: VmRef, *, max_age: float = 0.0, drift: bool = False, progress: Progress | None = None
    ) -> Outcome:
        """Observe the VM's node (an inventory no older than `max_age`), plan, act, and report.

        `drift`: a resync (no change of the object) — a reimage waits for a change or a manual trigger, and only
        Normal Events (and a new stall) are posted. `progress` is called with a status patch (phase, Reconciling)
        before the first action, so that a long operation (an image upload, a reimage) shows while it runs."""
        facts = VmFacts(
            generation=vm.generation,
            node_name=vm.status.node or vm.spec.node,
            vmid=vm.spec.vmid,
            run_strategy=vm.spec.run_strategy,
            requested_at=vm.requested_at,
        )
        node = self.nodes.get(vm.namespace, vm.spec.node)
        if node is None:
            facts.problem = Problem(
                "NodeNotReady",
                f"ProxmoxNode {vm.spec.node!r} is not configured yet (missing, or its Secret is not readable)",
            )
            return Outcome(build_status(vm.status, facts), retry=Retry(NODE_NOT_READY, facts.problem.message))
        facts.node_name = node.node_name
        events: list[Event] = []
        retry: Retry | None = None
        decision: steps.Decision | None = None
        agent = steps.AgentReading()
        async with self.lock_for(vm.uid):
            try:
                seen = await steps.observe(node, max_age)
                facts.observed_at = seen.fetched_wall
                facts.observation = seen.inventory.vms.get(vm.spec.vmid)
                immovable = steps.moved(vm, node)
                if immovable is not None:
                    facts.observation, facts.observed_at, facts.problem = None, "", immovable
                else:
                    decision = await steps.plan(vm, node, self.images, seen)
                    if decision.plan.actions and seen.age > ACT_MAX_AGE_S:  # never act on an old view
                        decision = await steps.plan(vm, node, self.images, await steps.observe(node, 0))
                    if drift and ActionKind.DESTROY in decision.plan.kinds():
                        facts.problem = Problem(
                            "ReimagePending",
                            "the image changed without a change of the spec; the VM is recreated on the next "
                            f"change of the object or when it is annotated {ANNOTATION_REQUESTED_AT}",
                        )
                    else:
                        if decision.plan.actions:
                            if progress is not None:
                                await progress(progress_status(vm, decision.plan))
                            await steps.act(vm, node, self.images, decision, events, self.agent, drift=drift)
                            decision = await steps.plan(vm, node, self.images, await steps.observe(node, 0))
                        agent = await steps.read_agent(vm, node, decision.observed, self.agent)
            except LocalImageError as exc:
                facts.problem = Problem("ImageUnavailable", str(exc), stalled=exc.permanent)
                if not exc.permanent:
                    retry = Retry(IMAGE_NOT_READY, str(exc))
            except (NodeUnreachable, ConnectionLost) as exc:
                facts.node_unreachable = True
                facts.problem = Problem("NodeUnreachable", short(exc), unknown=True)
                retry = Retry(NODE_UNREACHABLE, short(exc))
            except TransientError as exc:
                facts.problem = Problem(type(exc).__name__, short(exc))
                retry = Retry(NODE_TRANSIENT, short(exc))
            except PermanentError as exc:
                facts.problem = Problem(type(exc).__name__, short(exc), stalled=True)
                events.append(Event("Warning", type(exc).__name__, short(exc)))
        return self._report(vm, facts, decision, agent, events, retry, drift=drift)

    def _report(
        self,
        vm: VmRef,
        facts: VmFacts,
        decision: steps.Decision | None,
        agent: steps.AgentReading,
        events: list[Event],
        retry: Retry | None,
        *,
        drift: bool,
    ) -> Outcome:
        """The last step: the facts of the last observation and plan, the problem met, the status and outcome."""
        if decision is not None:
            facts.observation = decision.observed
            facts.observed_at = decision.seen.fetched_wall
            facts.plan = decision.plan
            facts.problem = facts.problem or decision.problem
            facts.agent = agent.condition
            facts.ip_addresses = agent.addresses
        facts.owned = facts.observation is not None and facts.observation.ownership.owned_by(vm.uid)
        status = build_status(vm.status, facts)
        stall = facts.problem.message if facts.problem is not None and facts.problem.stalled else ""
        if retry is None and agent.waiting:
            retry = Retry(AGENT_WAIT, "waiting for the guest agent to report addresses")
        if drift:
            newly_stalled = _stalled(status) != _stalled(vm.status) and bool(stall)
            events = [e for e in events if e.type == "Normal" or newly_stalled]
        return Outcome(status, events, retry=None if stall else retry, stall=stall)

    # --- delete ----------------------------------------------------------------------------------------------------

    async def delete(self, vm: VmRef) -> Outcome:
        """Destroy the VM if policy allows and it is ours; never on doubt (see `delete`)."""
        async with self.lock_for(vm.uid):
            return await delete_vm(self.nodes, vm)


def invalid_spec(status: ProxmoxVMStatus, generation: int, message: str) -> Outcome:
    """The outcome for a ProxmoxVM whose spec does not validate: Failed and Stalled until the spec changes."""
    status = status.model_copy(deep=True)
    summarize(status, READINESS, generation=generation, problem=Problem("InvalidSpec", message, stalled=True))
    status.phase = Phase.FAILED
    return Outcome(status, stall=message)


def _stalled(status: ProxmoxVMStatus) -> tuple[str, str] | None:
    found = find_condition(status.conditions, ConditionType.STALLED)
    return None if found is None else (found.status, found.reason)
