"""ProxmoxVM reconcile: the steps of `steps` in order — observe → plan → act → report — and the deletion
(`delete`), serialised per object. No kopf here; the handlers apply the returned `Outcome`.

Every step is idempotent: the plan is recomputed from what the node reports, the driver's create is idempotent by
the ownership marker, and a resize, start or stop re-checks the node first. A crash between any two `qm` calls
therefore converges on the next run without a second VM or an orphaned disk.

The order: observe (again, fresh, when acting on a view older than `ACT_MAX_AGE_S`), plan, act, observe and plan
again to report what acting did, read the agent, report. Each step's result is recorded (in `_Run`) by that step
only, and the report's facts are built once from the last of them: a failure reports the last observation and plan
made before it, with the failure as the problem — never a mix of views.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from proxnix.adapters.local_images import LocalImageError
from proxnix.api.conditions import ConditionType, find_condition
from proxnix.api.meta import ANNOTATION_REQUESTED_AT
from proxnix.api.proxmoxvm import READINESS, Phase, ProxmoxVMStatus
from proxnix.api.summarize import Problem, summarize
from proxnix.proxmox.errors import (
    AuthenticationFailed,
    ConnectionLost,
    HostKeyMismatch,
    NodeUnreachable,
    PermanentError,
    TransientError,
)
from proxnix.proxmox.plan import ActionKind
from proxnix.reconcile.node_directory import Seen
from proxnix.reconcile.outcome import (
    AGENT_WAIT,
    IMAGE_DOWNLOADING,
    IMAGE_NOT_READY,
    INTERNAL_ERROR,
    NODE_NOT_READY,
    NODE_TRANSIENT,
    NODE_UNREACHABLE,
    Event,
    Outcome,
    Progress,
    Retry,
    short,
)
from proxnix.reconcile.vm import steps
from proxnix.reconcile.vm.delete import delete_vm
from proxnix.reconcile.vm.ports import Images, VmNode, VmNodes
from proxnix.reconcile.vm.ref import VmRef
from proxnix.reconcile.vm.status import VmFacts, build_status, progress_status

log = logging.getLogger(__name__)

# How old an inventory may be before the operator acts on it (a plan with actions is re-made on a fresh view).
ACT_MAX_AGE_S = 1.0


@dataclass
class _Run:
    """What one reconcile learned, recorded by the step that learned it: the first view, the latest decision (plan
    on the latest view), the agent reading, the Events of what was done, and the problem met (a guard's or a
    failure's) with its retry."""

    seen: Seen | None = None
    decision: steps.Decision | None = None
    agent: steps.AgentReading = field(default_factory=steps.AgentReading)
    events: list[Event] = field(default_factory=list)
    problem: Problem | None = None
    retry: Retry | None = None
    unreachable: bool = False


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
        node = self.nodes.get(vm.namespace, vm.spec.node)
        if node is None:
            problem = Problem(
                "NodeNotReady",
                f"ProxmoxNode {vm.spec.node!r} is not configured yet (missing, or its Secret is not readable)",
            )
            facts = self._facts(vm, vm.status.node or vm.spec.node, _Run(problem=problem))
            return Outcome(build_status(vm.status, facts), retry=Retry(NODE_NOT_READY, problem.message))
        run = _Run()
        async with self.lock_for(vm.uid):
            try:
                # harden (issue 10): everything done on the node is abandoned as soon as it stops answering
                await node.unless_down(
                    self._steps(vm, node, run, max_age=max_age, drift=drift, progress=progress)
                )
            except LocalImageError as exc:
                # harden (issue 10): the reason says which (ImageSourceForbidden, ImageDownloading, ...); a download
                # in progress is looked at again soon, without holding this VM's lock meanwhile.
                run.problem = Problem(exc.reason, str(exc), stalled=exc.permanent)
                if not exc.permanent:
                    policy = IMAGE_DOWNLOADING if exc.reason == "ImageDownloading" else IMAGE_NOT_READY
                    run.retry = Retry(policy, str(exc))
            except (NodeUnreachable, ConnectionLost) as exc:
                run.unreachable = True
                run.problem = Problem("NodeUnreachable", short(exc), unknown=True)
                run.retry = Retry(NODE_UNREACHABLE, short(exc))
            except (HostKeyMismatch, AuthenticationFailed) as exc:
                # The node cannot be reached until its key is fixed: the VM's state is unknown (not Failed, not
                # its last good state), and the cause keeps its name.
                run.unreachable = True
                run.problem = Problem(exc.reason, short(exc), stalled=True, unknown=True)
                run.events.append(Event("Warning", exc.reason, short(exc)))
            except TransientError as exc:
                run.problem = Problem(exc.reason, short(exc))
                run.retry = Retry(NODE_TRANSIENT, short(exc))
            except PermanentError as exc:
                run.problem = Problem(exc.reason, short(exc), stalled=True)
                run.events.append(Event("Warning", exc.reason, short(exc)))
            # harden (issue 10): a bug becomes a condition (its traceback in the log), not a silent traceback loop
            except Exception as exc:
                log.exception("%s/%s: unexpected error in reconcile", vm.namespace, vm.name)
                message = f"unexpected {type(exc).__name__}: {short(exc)} (see the operator log)"
                run.problem = Problem("InternalError", message)
                run.retry = Retry(INTERNAL_ERROR, message)
                run.events.append(Event("Warning", "InternalError", message))
        return self._report(vm, self._facts(vm, node.node_name, run), run, drift=drift)

    async def _steps(
        self, vm: VmRef, node: VmNode, run: _Run, *, max_age: float, drift: bool, progress: Progress | None
    ) -> None:
        """observe → plan → act → observe and plan again → agent; each result recorded in `run` as it comes."""
        run.seen = await steps.observe(node, max_age)
        run.problem = steps.moved(vm, node)
        if run.problem is not None:
            run.seen = None  # keep the last status: this view shows a VM the object no longer names
            return
        run.decision = await steps.plan(vm, node, self.images, run.seen)
        if run.decision.plan.actions and run.seen.age > ACT_MAX_AGE_S:  # never act on an old view
            run.decision = await steps.plan(vm, node, self.images, await steps.observe(node, 0))
        if drift and ActionKind.DESTROY in run.decision.plan.kinds():
            run.problem = Problem(
                "ReimagePending",
                "the image changed without a change of the spec; the VM is recreated on the next change of the "
                f"object or when it is annotated {ANNOTATION_REQUESTED_AT}",
            )
            return
        if run.decision.plan.actions:
            if progress is not None:
                await progress(progress_status(vm, run.decision.plan))
            await steps.act(vm, node, self.images, run.decision, run.events, self.agent, drift=drift)
            run.decision = await steps.plan(vm, node, self.images, await steps.observe(node, 0))
        run.agent = await steps.read_agent(vm, node, run.decision.observed, self.agent)

    @staticmethod
    def _facts(vm: VmRef, node_name: str, run: _Run) -> VmFacts:
        """The report's facts, made once from the last observation and plan of the run and the problem it met."""
        decision = run.decision
        seen = decision.seen if decision is not None else run.seen
        observation = seen.inventory.vms.get(vm.spec.vmid) if seen is not None else None
        return VmFacts(
            generation=vm.generation,
            node_name=node_name,
            vmid=vm.spec.vmid,
            run_strategy=vm.spec.run_strategy,
            requested_at=vm.requested_at,
            observation=observation,
            observed_at=seen.fetched_wall if seen is not None else "",
            owned=observation is not None and observation.ownership.owned_by(vm.uid),
            plan=decision.plan if decision is not None else None,
            problem=run.problem or (decision.problem if decision is not None else None),
            node_unreachable=run.unreachable,
            agent=run.agent.condition,
            ip_addresses=run.agent.addresses,
        )

    @staticmethod
    def _report(vm: VmRef, facts: VmFacts, run: _Run, *, drift: bool) -> Outcome:
        """The last step: the status from the facts; stall, retry or poll; the Events worth posting."""
        status = build_status(vm.status, facts)
        stall = facts.problem.message if facts.problem is not None and facts.problem.stalled else ""
        retry = run.retry
        if retry is None and run.agent.waiting:
            retry = Retry(AGENT_WAIT, "waiting for the guest agent to report addresses")
        events = run.events
        if drift:  # a resync posts what it corrected, and a stall once
            newly_stalled = bool(stall) and _stalled(status) != _stalled(vm.status)
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
