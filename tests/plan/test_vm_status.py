"""ProxmoxVM status from one reconcile's facts: phase, conditions and what kubectl shows."""

from __future__ import annotations

from pathlib import Path

from proxnix.api.conditions import find_condition
from proxnix.api.proxmoxvm import ProxmoxVMStatus, RunStrategy
from proxnix.api.summarize import Problem
from proxnix.proxmox.inventory import VmObservation
from proxnix.proxmox.ownership import config_ownership
from proxnix.proxmox.plan import VmPlan
from proxnix.proxmox.vm_config import parse_vm_config_file
from proxnix.reconcile.vm.status import VmFacts, build_status, problem_from_plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plan"
NOW = "2026-11-26T00:00:00Z"
LATER = "2026-11-26T00:05:00Z"


def observed(fixture: str, power: str) -> VmObservation:
    config = parse_vm_config_file((FIXTURES / fixture).read_text(), path="/etc/pve/qemu-server/100.conf")
    return VmObservation(100, "pve1", config, power, "pid", ownership=config_ownership(config))


def facts(**changes: object) -> VmFacts:
    base = VmFacts(generation=3, node_name="pve1", vmid=100, run_strategy=RunStrategy.ALWAYS, observed_at=NOW)
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def cond(status: ProxmoxVMStatus, type_: str) -> tuple[str, str]:
    found = find_condition(status.conditions, type_)
    assert found is not None, type_
    return found.status, found.reason


def test_running_and_in_sync_is_ready() -> None:
    status = build_status(
        ProxmoxVMStatus(),
        facts(
            observation=observed("owned-running.conf", "running"),
            owned=True,
            plan=VmPlan(),
            ip_addresses=["10.0.0.5"],
        ),
        now=NOW,
    )
    assert status.phase == "Running"
    assert cond(status, "Ready") == ("True", "Succeeded")
    assert cond(status, "InSync") == ("True", "InSync")
    assert cond(status, "Provisioned") == ("True", "Created")
    assert cond(status, "Stalled") == ("False", "NotStalled")
    assert status.ip_addresses == ["10.0.0.5"]
    assert status.image_short == "a" * 12
    assert status.observed.memory_mib == 2048
    assert status.observed_generation == 3
    assert all(c.observed_generation == 3 for c in status.conditions)


def test_unreachable_node_is_unknown_and_keeps_the_last_observation() -> None:
    first = build_status(
        ProxmoxVMStatus(),
        facts(observation=observed("owned-running.conf", "running"), owned=True, plan=VmPlan()),
        now=NOW,
    )
    second = build_status(
        first,
        facts(node_unreachable=True, problem=Problem("NodeUnreachable", "connection refused", stalled=False)),
        now=LATER,
    )
    assert second.phase == "Unknown"
    assert cond(second, "Ready") == ("Unknown", "NodeUnreachable")
    assert second.observed.memory_mib == 2048  # the last known facts, not wiped
    assert second.last_sync_time == NOW


def test_conflict_is_stalled_and_failed() -> None:
    problem = Problem("VMIDConflict", "VMID 100 is taken by VM 'legacy'", stalled=True)
    status = build_status(ProxmoxVMStatus(), facts(problem=problem, observed_at=NOW), now=NOW)
    assert status.phase == "Failed"
    assert cond(status, "Stalled") == ("True", "VMIDConflict")
    assert cond(status, "Ready") == ("False", "VMIDConflict")
    assert cond(status, "Provisioned") == ("False", "VMIDConflict")
    assert cond(status, "Reconciling")[0] == "False"


def test_pending_changes_set_restart_required_but_stay_ready() -> None:
    plan = VmPlan(restart_required=("memory",))
    status = build_status(
        ProxmoxVMStatus(),
        facts(observation=observed("owned-pending.conf", "running"), owned=True, plan=plan),
        now=NOW,
    )
    assert cond(status, "RestartRequired") == ("True", "PendingChanges")
    assert cond(status, "Ready")[0] == "True"
    assert status.observed.pending == ["memory"]


def test_stopped_vm_with_always_is_not_ready_and_loses_its_addresses() -> None:
    previous = ProxmoxVMStatus(ip_addresses=["10.0.0.5"])
    status = build_status(
        previous,
        facts(observation=observed("owned-running.conf", "stopped"), owned=True, plan=VmPlan()),
        now=NOW,
    )
    assert status.phase == "Stopped"
    assert cond(status, "Ready")[0] == "False"
    assert status.ip_addresses == []
    assert cond(status, "AgentConnected") == ("False", "VMNotRunning")


def test_transition_time_survives_a_resync() -> None:
    f = facts(observation=observed("owned-running.conf", "running"), owned=True, plan=VmPlan())
    first = build_status(ProxmoxVMStatus(), f, now=NOW)
    f.observed_at = LATER
    second = build_status(first, f, now=LATER)
    ready = find_condition(second.conditions, "Ready")
    assert ready is not None
    assert ready.last_transition_time == NOW
    assert second.last_sync_time == LATER


def test_protected_image_change_blocks_in_sync() -> None:
    from proxnix.proxmox.plan import Blocker, BlockReason

    plan = VmPlan(blockers=(Blocker(BlockReason.IMAGE_CHANGE_BLOCKED, "image changed but protected"),))
    problem = problem_from_plan(plan)
    assert problem is not None
    assert problem.stalled
    status = build_status(
        ProxmoxVMStatus(),
        facts(observation=observed("owned-running.conf", "running"), owned=True, plan=plan, problem=problem),
        now=NOW,
    )
    assert status.phase == "Running"
    assert cond(status, "InSync") == ("False", "ImageChangeBlocked")


def test_progress_phase_names_what_is_about_to_happen() -> None:
    from proxnix.proxmox.plan import Action, ActionKind
    from proxnix.reconcile.vm.status import progress_phase, progress_status

    def plan(*kinds: ActionKind, reimage: bool = False) -> VmPlan:
        return VmPlan(actions=tuple(Action(k, k.value) for k in kinds), reimage=reimage)

    assert progress_phase(plan(ActionKind.CREATE, ActionKind.START)) == "Provisioning"
    assert (
        progress_phase(plan(ActionKind.STOP, ActionKind.DESTROY, ActionKind.CREATE, reimage=True))
        == "Reimaging"
    )
    assert progress_phase(plan(ActionKind.SET)) == "Updating"
    assert progress_phase(plan(ActionKind.START)) == "Starting"

    class Ref:
        status = ProxmoxVMStatus()
        generation = 4

    patch = progress_status(Ref(), plan(ActionKind.CREATE), now=NOW)
    assert patch["phase"] == "Provisioning"
    reconciling = next(c for c in patch["conditions"] if c["type"] == "Reconciling")  # type: ignore[attr-defined]
    assert (reconciling["status"], reconciling["observedGeneration"]) == ("True", 4)


def test_progress_leaves_ready_as_the_last_reconcile_said() -> None:
    """A drift correction on a Ready VM does not flap Ready (nor rewrite its transition time) mid-run."""
    from proxnix.api.conditions import set_condition
    from proxnix.proxmox.plan import Action, ActionKind
    from proxnix.reconcile.vm.status import progress_status

    ready = set_condition([], "Ready", "True", "Running", "", 3, now="2020-01-01T00:00:00Z")

    class Ref:
        status = ProxmoxVMStatus(conditions=ready)
        generation = 3

    patch = progress_status(Ref(), VmPlan(actions=(Action(ActionKind.START, "start"),)), now=NOW)
    conditions = {c["type"]: c for c in patch["conditions"]}  # type: ignore[attr-defined]
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert "Stalled" not in conditions
    assert conditions["Reconciling"]["status"] == "True"
