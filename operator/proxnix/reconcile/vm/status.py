"""The VM's report step: its status as a function of what was observed and planned — phase, the VM's own
conditions (Provisioned, InSync, RestartRequired, AgentConnected), observed shape, IPs — with Ready, Reconciling
and Stalled left to the summariser (`proxnix.api.summarize`, over `proxmoxvm.READINESS`).

Pure: the reconcile steps gather facts (an observation, a plan, a problem) into a `VmFacts`, and `build_status`
turns them into the next status, keeping condition transition times from the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from proxnix.api.clock import now_rfc3339
from proxnix.api.conditions import Condition, ConditionStatus, ConditionType, find_condition, set_condition
from proxnix.api.proxmoxvm import READINESS, ObservedVM, Phase, ProxmoxVMStatus, RunStrategy
from proxnix.api.summarize import Problem, mark_progressing, summarize
from proxnix.proxmox.inventory import VmObservation
from proxnix.proxmox.plan import ActionKind, BlockReason, VmPlan


class VmRefLike(Protocol):
    """What `progress_status` reads of the object."""

    @property
    def status(self) -> ProxmoxVMStatus: ...

    @property
    def generation(self) -> int: ...


@dataclass
class VmFacts:
    """Everything one reconcile learned about the VM."""

    generation: int
    node_name: str
    vmid: int
    run_strategy: RunStrategy
    observation: VmObservation | None = None
    owned: bool = False
    plan: VmPlan | None = None
    problem: Problem | None = None
    node_unreachable: bool = False
    deleting: bool = False
    ip_addresses: list[str] | None = None
    agent: tuple[ConditionStatus, str, str] | None = None  # (status, reason, message)
    requested_at: str = ""
    observed_at: str = ""  # when the node was read (empty: it was not, this time)


def _phase(facts: VmFacts) -> Phase:
    if facts.deleting:
        return Phase.DELETING
    if facts.node_unreachable:
        return Phase.UNKNOWN
    if facts.problem is not None and facts.problem.stalled and not facts.owned:
        return Phase.FAILED
    obs = facts.observation if facts.owned else None
    if obs is None:
        return Phase.FAILED if facts.problem and facts.problem.stalled else Phase.PROVISIONING
    if facts.plan is not None and facts.plan.reimage:
        return Phase.REIMAGING
    if obs.power_state == "running":
        return Phase.RUNNING
    if obs.power_state in ("stopped", "paused", "suspended"):
        if facts.plan is not None and any(a.kind == "Start" for a in facts.plan.actions):
            return Phase.STARTING
        return Phase.STOPPED
    return Phase.UNKNOWN


def _power_ok(facts: VmFacts) -> bool:
    obs = facts.observation
    if obs is None:
        return False
    if facts.run_strategy == RunStrategy.ALWAYS:
        return obs.power_state == "running"
    if facts.run_strategy == RunStrategy.HALTED:
        return obs.power_state == "stopped"
    return True


def build_status(previous: ProxmoxVMStatus, facts: VmFacts, now: str | None = None) -> ProxmoxVMStatus:
    """The next status from the previous one and this reconcile's facts."""
    stamp = now or now_rfc3339()
    gen = facts.generation
    conds: list[Condition] = list(previous.conditions)

    def put(type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, status, reason, message, gen, now=stamp)

    status = previous.model_copy(deep=True)
    status.observed_generation = gen
    status.phase = _phase(facts)
    if facts.requested_at:
        status.last_handled_reconcile_at = facts.requested_at

    if facts.node_unreachable or not facts.observed_at:
        # Nothing fresh was seen: keep the last observation rather than claim the VM changed or vanished.
        issue = facts.problem or Problem("NotObserved", "the node was not read", stalled=False)
        if facts.node_unreachable:
            issue = replace(issue, unknown=True)  # Ready Unknown: the VM may be fine, it cannot be seen
        provisioned = find_condition(previous.conditions, ConditionType.PROVISIONED)
        was_provisioned = provisioned is not None and provisioned.status == "True"
        if facts.node_unreachable:
            status.phase = Phase.UNKNOWN
        elif not was_provisioned:
            status.phase = Phase.FAILED if issue.stalled else Phase.PENDING
        put(
            ConditionType.IN_SYNC,
            "Unknown" if facts.node_unreachable else "False",
            issue.reason,
            issue.message,
        )
        status.conditions = conds
        summarize(status, READINESS, generation=gen, problem=issue, now=stamp)
        return status

    obs = facts.observation if facts.owned else None
    status.last_sync_time = facts.observed_at
    status.node = facts.node_name
    status.vmid = facts.vmid
    if obs is not None:
        status.observed = obs.to_observed()
        status.image_sha256 = obs.ownership.image_sha256
        status.image_short = obs.ownership.image_sha256[:12]
        put(ConditionType.PROVISIONED, "True", "Created", f"VM {facts.vmid} exists on node {facts.node_name}")
    else:
        status.observed = ObservedVM()
        status.ip_addresses = []
        status.image_sha256 = ""
        status.image_short = ""
        reason = facts.problem.reason if facts.problem and facts.problem.stalled else "NotCreated"
        message = facts.problem.message if facts.problem else f"VM {facts.vmid} is not created yet"
        put(ConditionType.PROVISIONED, "False", reason, message)

    plan = facts.plan
    problem = facts.problem
    if problem is not None:
        put(ConditionType.IN_SYNC, "False", problem.reason, problem.message)
    elif plan is not None and not plan.in_sync:
        pending = "; ".join(a.reason for a in plan.actions) or "; ".join(b.message for b in plan.blockers)
        put(ConditionType.IN_SYNC, "False", "Progressing", pending)
    elif obs is not None:
        put(ConditionType.IN_SYNC, "True", "InSync", "the VM matches its spec")

    if obs is not None and plan is not None and plan.restart_required:
        keys = ", ".join(plan.restart_required)
        put(
            ConditionType.RESTART_REQUIRED,
            "True",
            "PendingChanges",
            f"{keys} take effect at the next restart; set spec.rebootForPendingChanges or restart the VM",
        )
    else:
        put(ConditionType.RESTART_REQUIRED, "False", "NoPendingChanges", "")

    if facts.ip_addresses is not None:
        status.ip_addresses = facts.ip_addresses
    if facts.agent is not None:
        put(ConditionType.AGENT_CONNECTED, *facts.agent)
    if obs is not None and obs.power_state != "running":
        status.ip_addresses = []
        put(ConditionType.AGENT_CONNECTED, "False", "VMNotRunning", "the VM is not running")

    status.conditions = conds
    if problem is not None:
        summarize(status, READINESS, generation=gen, problem=problem, now=stamp)
    elif plan is not None and not plan.in_sync:
        summarize(status, READINESS, generation=gen, progressing="converging", now=stamp)
    elif obs is not None and _power_ok(facts):
        summarize(status, READINESS, generation=gen, ready_message=_ready_message(facts, status), now=stamp)
    else:
        power = obs.power_state if obs is not None else "not created"
        want = "running" if facts.run_strategy == RunStrategy.ALWAYS else "stopped"
        message = f"the VM is {power}; runStrategy {facts.run_strategy} wants it {want}"
        summarize(status, READINESS, generation=gen, progressing=message, now=stamp)
    return status


def _ready_message(facts: VmFacts, status: ProxmoxVMStatus) -> str:
    obs = facts.observation
    power = obs.power_state if obs else "unknown"
    ips = f", {', '.join(status.ip_addresses)}" if status.ip_addresses else ""
    return f"VM {facts.vmid} on {facts.node_name} is {power}{ips}"


STALLING_BLOCKS = frozenset(
    {
        BlockReason.VMID_CONFLICT,
        BlockReason.IMAGE_CHANGE_BLOCKED,
        BlockReason.DISK_SHRINK_REFUSED,
        BlockReason.IMAGE_TOO_LARGE,
    }
)


def problem_from_plan(plan: VmPlan) -> Problem | None:
    """The first blocker of a plan as a Problem (stalled unless it clears by itself)."""
    if not plan.blockers:
        return None
    blocker = plan.blockers[0]
    return Problem(str(blocker.reason), blocker.message, stalled=blocker.reason in STALLING_BLOCKS)


def progress_phase(plan: VmPlan) -> Phase:
    """The phase to show while the plan's actions run."""
    kinds = set(plan.kinds())
    if plan.reimage:
        return Phase.REIMAGING
    if ActionKind.CREATE in kinds:
        return Phase.PROVISIONING
    if kinds & {ActionKind.SET, ActionKind.RESIZE, ActionKind.REBOOT}:
        return Phase.UPDATING
    if ActionKind.START in kinds:
        return Phase.STARTING
    if kinds & {ActionKind.SHUTDOWN, ActionKind.STOP}:
        return Phase.UPDATING
    return Phase.PENDING


def progress_status(vm: VmRefLike, plan: VmPlan, now: str | None = None) -> dict[str, object]:
    """A status patch announcing what is about to be done: the phase, and Reconciling=True (Ready untouched)."""
    status = vm.status.model_copy(deep=True)
    mark_progressing(
        status, generation=vm.generation, message="; ".join(a.reason for a in plan.actions), now=now
    )
    return {
        "phase": progress_phase(plan).value,
        "conditions": [c.model_dump(mode="json", by_alias=True) for c in status.conditions],
    }
