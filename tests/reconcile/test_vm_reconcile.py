"""The ProxmoxVM reconcile's steps (observe → plan → act → report) and its safety rules, against an in-memory node
(`tests.support.fake_node`): what it does on the node, in which order, and what it reports."""

from __future__ import annotations

import pytest

from proxnix.adapters.local_images import LocalImageError
from proxnix.api.conditions import find_condition
from proxnix.api.proxmoxvm import ProxmoxVMSpec, ProxmoxVMStatus
from proxnix.proxmox.errors import CommandFailed, VmLocked
from proxnix.proxmox.ownership import Owner
from proxnix.reconcile.outcome import (
    AGENT_WAIT,
    IMAGE_NOT_READY,
    NODE_NOT_READY,
    NODE_TRANSIENT,
    NODE_UNREACHABLE,
)
from proxnix.reconcile.vm import VmReconciler, VmRef
from proxnix.reconcile.vm.reconciler import ACT_MAX_AGE_S
from tests.support.fake_node import FakeImages, FakeNode, FakeNodes, foreign_vm, owned_vm, retried_with

UID = "11111111-2222-4333-8444-555555555555"
SOURCE = "/nix/store/aaaa-nixos.qcow2"
IMAGE = "a" * 64
NEW_SOURCE = "/nix/store/bbbb-nixos.qcow2"
NEW_IMAGE = "b" * 64
OWNER = Owner("default", "web01", UID)
CHANGES = {"create", "import", "update", "resize", "start", "stop", "shutdown", "reboot", "destroy", "upload"}


def spec(**changes: object) -> ProxmoxVMSpec:
    return ProxmoxVMSpec.model_validate({"node": "pve1", "vmid": 100, "image": {"source": SOURCE}, **changes})


def ref(status: ProxmoxVMStatus | None = None, **changes: object) -> VmRef:
    return VmRef("default", "web01", UID, 2, spec(**changes), status or ProxmoxVMStatus())


def world(**node: object) -> tuple[VmReconciler, FakeNode, FakeImages]:
    fake = FakeNode(**node)  # type: ignore[arg-type]
    images = FakeImages()
    images.add(SOURCE, IMAGE)
    images.add(NEW_SOURCE, NEW_IMAGE)
    return VmReconciler(FakeNodes({"pve1": fake}), images), fake, images


def cond(status: ProxmoxVMStatus | None, type_: str) -> tuple[str, str]:
    assert status is not None
    found = find_condition(status.conditions, type_)
    assert found is not None, type_
    return found.status, found.reason


def changes(node: FakeNode) -> list[tuple[str, int]]:
    return [c for c in node.calls if c[0] in CHANGES]


# --- the steps in order ----------------------------------------------------------------------------------------------


async def test_a_missing_vm_is_uploaded_then_created_then_started_and_reported_ready() -> None:
    reconciler, node, _ = world(agent_addresses=["10.0.0.5"])
    outcome = await reconciler.reconcile(ref())
    assert changes(node) == [("upload", 0), ("create", 100), ("start", 100)]
    assert [e.reason for e in outcome.events] == ["Created", "Started"]
    assert node.calls[-2:] == [("observe", 0), ("agent", 100)]  # reported from a view taken after acting
    status = outcome.status
    assert isinstance(status, ProxmoxVMStatus)
    assert status.phase == "Running"
    assert cond(status, "Ready") == ("True", "Succeeded")
    assert status.ip_addresses == ["10.0.0.5"]
    assert status.observed_generation == 2
    assert all(c.observed_generation == 2 for c in status.conditions)
    assert (outcome.retry, outcome.stall) == (None, "")


async def test_progress_is_reported_before_the_first_action() -> None:
    reconciler, node, _ = world()
    reported: list[tuple[dict[str, object], int]] = []

    async def progress(patch: dict[str, object]) -> None:
        reported.append((patch, len(changes(node))))

    await reconciler.reconcile(ref(), progress=progress)
    assert len(reported) == 1
    patch, changes_before = reported[0]
    assert changes_before == 0
    assert patch["phase"] == "Provisioning"


async def test_a_vm_in_sync_is_left_alone() -> None:
    reconciler, node, _ = world(agent_addresses=["10.0.0.5"])
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.reconcile(ref())
    assert changes(node) == []
    assert outcome.events == []
    assert cond(outcome.status, "Ready") == ("True", "Succeeded")


async def test_a_plan_on_an_old_view_is_made_again_on_a_fresh_one_before_acting() -> None:
    reconciler, node, _ = world(cached_age_s=ACT_MAX_AGE_S + 5)
    await reconciler.reconcile(ref(), max_age=60)
    first_change = node.calls.index(("upload", 0))
    assert node.calls[:first_change] == [("observe", 0), ("observe", 0)]


async def test_an_update_changes_the_vm_in_place() -> None:
    reconciler, node, _ = world(agent_addresses=["10.0.0.5"])
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.reconcile(ref(memoryMiB=1024))
    assert changes(node) == [("update", 100)]
    assert node.vms[100].values["memory"] == "1024"
    assert [e.reason for e in outcome.events] == ["Updated"]


async def test_a_new_image_reimages_an_unprotected_vm_uploading_before_destroying() -> None:
    reconciler, node, _ = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.reconcile(ref(image={"source": NEW_SOURCE}))
    done = [what for what, _ in changes(node)]
    assert done.index("upload") < done.index("destroy") < done.index("create")
    assert "Destroyed" in [e.reason for e in outcome.events]


async def test_drift_corrections_say_so() -> None:
    reconciler, node, _ = world()
    node.vms[100] = owned_vm(OWNER, IMAGE, power="stopped")
    outcome = await reconciler.reconcile(ref(), drift=True)
    assert changes(node) == [("start", 100)]
    assert outcome.events[0].reason == "Started"
    assert outcome.events[0].message.startswith("drift: ")


# --- safety rules ----------------------------------------------------------------------------------------------------


async def test_never_touches_a_vm_that_is_not_ours() -> None:
    reconciler, node, _ = world()
    node.vms[100] = foreign_vm()
    outcome = await reconciler.reconcile(ref())
    assert changes(node) == []
    assert cond(outcome.status, "Stalled") == ("True", "VMIDConflict")
    assert cond(outcome.status, "Ready") == ("False", "VMIDConflict")
    assert "not created by proxnix" in outcome.stall


async def test_never_touches_a_vm_of_another_proxnix_object() -> None:
    reconciler, node, _ = world()
    node.vms[100] = owned_vm(Owner("default", "other", "99999999-2222-4333-8444-555555555555"), IMAGE)
    outcome = await reconciler.reconcile(ref(image={"source": NEW_SOURCE}))
    assert changes(node) == []
    assert cond(outcome.status, "Stalled") == ("True", "VMIDConflict")


async def test_never_creates_over_a_vmid_held_on_another_node() -> None:
    reconciler, node, _ = world(elsewhere={100: "pve2"})
    outcome = await reconciler.reconcile(ref())
    assert changes(node) == []
    assert cond(outcome.status, "Stalled") == ("True", "VMIDConflict")


async def test_nothing_is_done_on_an_unreachable_node() -> None:
    reconciler, node, _ = world(reachable=False)
    previous = ProxmoxVMStatus(phase="Running")
    outcome = await reconciler.reconcile(ref(previous, image={"source": NEW_SOURCE}))
    assert changes(node) == []
    status = outcome.status
    assert isinstance(status, ProxmoxVMStatus)
    assert status.phase == "Unknown"
    assert cond(status, "Ready") == ("Unknown", "NodeUnreachable")
    assert retried_with(outcome) == NODE_UNREACHABLE


async def test_a_protected_vm_is_never_reimaged() -> None:
    reconciler, node, _ = world()
    node.vms[100] = owned_vm(OWNER, IMAGE, protection=True)
    outcome = await reconciler.reconcile(ref(protected=True, image={"source": NEW_SOURCE}))
    assert ("destroy", 100) not in changes(node)
    assert ("create", 100) not in changes(node)
    assert cond(outcome.status, "InSync") == ("False", "ImageChangeBlocked")
    assert cond(outcome.status, "Stalled") == ("True", "ImageChangeBlocked")


async def test_a_resync_never_reimages_it_waits_for_a_change_of_the_object() -> None:
    reconciler, node, _ = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.reconcile(ref(image={"source": NEW_SOURCE}), drift=True)
    assert changes(node) == []
    assert cond(outcome.status, "InSync") == ("False", "ReimagePending")


async def test_an_unreadable_image_keeps_our_vm_on_its_own_image() -> None:
    reconciler, node, images = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    images.images.pop(SOURCE)
    outcome = await reconciler.reconcile(ref(memoryMiB=1024))
    assert changes(node) == [("update", 100)]  # updated in place, never reimaged on a guess
    assert cond(outcome.status, "InSync") == ("False", "ImageUnavailable")


async def test_a_vm_is_never_moved_or_renumbered() -> None:
    reconciler, node, _ = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    first = await reconciler.reconcile(ref())
    assert isinstance(first.status, ProxmoxVMStatus)
    outcome = await reconciler.reconcile(ref(first.status, vmid=101))
    assert changes(node) == []
    assert cond(outcome.status, "Stalled") == ("True", "ImmutableField")
    assert "spec.vmid changed from 100 to 101" in outcome.stall


# --- problems and retries --------------------------------------------------------------------------------------------


async def test_a_node_not_configured_yet_is_retried_soon() -> None:
    reconciler = VmReconciler(FakeNodes(), FakeImages())
    outcome = await reconciler.reconcile(ref())
    assert retried_with(outcome) == NODE_NOT_READY
    assert cond(outcome.status, "Reconciling") == ("True", "NodeNotReady")


async def test_an_image_not_there_yet_is_retried() -> None:
    reconciler, node, images = world()
    images.images.pop(SOURCE)
    outcome = await reconciler.reconcile(ref())
    assert changes(node) == []
    assert retried_with(outcome) == IMAGE_NOT_READY


async def test_a_wrong_image_stalls() -> None:
    reconciler, node, images = world()
    images.broken[SOURCE] = LocalImageError("image has sha256 c…, expected a…", permanent=True)
    outcome = await reconciler.reconcile(ref())
    assert changes(node) == []
    assert cond(outcome.status, "Stalled") == ("True", "ImageUnavailable")
    assert outcome.retry is None


async def test_a_transient_failure_keeps_the_events_of_what_was_done_and_retries() -> None:
    reconciler, node, _ = world()
    node.fail_on["start"] = VmLocked("VM 100 is locked (backup)", lock="backup", node="pve1")
    outcome = await reconciler.reconcile(ref())
    assert [e.reason for e in outcome.events] == ["Created"]
    assert retried_with(outcome) == NODE_TRANSIENT
    assert cond(outcome.status, "Ready") == ("False", "VmLocked")


async def test_a_permanent_failure_stalls_with_a_warning() -> None:
    reconciler, node, _ = world()
    node.fail_on["create"] = CommandFailed("storage 'local-lvm' does not exist", node="pve1")
    outcome = await reconciler.reconcile(ref())
    assert outcome.stall
    assert outcome.events[-1].type == "Warning"
    assert cond(outcome.status, "Stalled") == ("True", "CommandFailed")


async def test_a_booting_guest_agent_is_polled() -> None:
    reconciler, node, _ = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.reconcile(ref())
    assert retried_with(outcome) == AGENT_WAIT
    assert cond(outcome.status, "AgentConnected") == ("False", "AgentNotRunning")


@pytest.mark.parametrize("drift", [False, True])
async def test_a_resync_posts_only_normal_events_and_new_stalls(drift: bool) -> None:
    reconciler, node, _ = world()
    node.fail_on["start"] = CommandFailed("start failed", node="pve1")
    node.vms[100] = owned_vm(OWNER, IMAGE, power="stopped")
    first = await reconciler.reconcile(ref(), drift=drift)
    assert [e.type for e in first.events] == ["Warning"]  # a new stall is told once
    again = await reconciler.reconcile(ref(first.status), drift=drift)
    assert [e.type for e in again.events] == ([] if drift else ["Warning"])
