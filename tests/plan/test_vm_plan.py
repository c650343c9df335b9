"""The VM plan: from a desired VM and a node inventory (real config files) to actions or blockers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from proxnix.api.proxmoxvm import RunStrategy
from proxnix.proxmox.definition import VmDefinition
from proxnix.proxmox.inventory import NodeInventory, VmObservation
from proxnix.proxmox.ownership import Owner, config_ownership
from proxnix.proxmox.plan import GIB, ActionKind, BlockReason, DesiredVM, plan_vm
from proxnix.proxmox.pvesh import ClusterGuest
from proxnix.proxmox.vm_config import parse_vm_config_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plan"
UID = "11111111-2222-4333-8444-555555555555"
IMAGE = "a" * 64
NEW_IMAGE = "b" * 64


def desired(**changes: object) -> DesiredVM:
    definition = VmDefinition(
        vmid=100,
        name="web01",
        cores=2,
        sockets=1,
        memory_mib=2048,
        scsihw="virtio-scsi-pci",
        disk_slot="scsi0",
        disk_storage="local-lvm",
        disk_size_gib=None,
        bridge="vmbr0",
        net_model="virtio",
        onboot=True,
        protection=False,
    )
    def_changes = {k: v for k, v in changes.items() if k in VmDefinition.__dataclass_fields__}
    other = {k: v for k, v in changes.items() if k not in def_changes}
    base = DesiredVM(
        definition=replace(definition, **def_changes),  # type: ignore[arg-type]
        owner=Owner(namespace="default", name="web01", uid=UID),
        image_sha256=IMAGE,
        image_size_bytes=4 * GIB,
        run_strategy=RunStrategy.ALWAYS,
    )
    return replace(base, **other)  # type: ignore[arg-type]


def observed(fixture: str, power: str, vmid: int = 100, node: str = "pve1") -> VmObservation:
    config = parse_vm_config_file((FIXTURES / fixture).read_text(), path=f"/etc/pve/qemu-server/{vmid}.conf")
    return VmObservation(
        vmid=vmid,
        node=node,
        config=config,
        power_state=power,
        power_source="pid",
        ownership=config_ownership(config),
    )


def inventory(*vms: VmObservation, cluster: dict[int, str] | None = None) -> NodeInventory:
    guests = {
        vmid: ClusterGuest(vmid=vmid, node=node, type="qemu", status="running", name=f"vm{vmid}")
        for vmid, node in (cluster or {}).items()
    }
    return NodeInventory(node="pve1", vms={vm.vmid: vm for vm in vms}, cluster=guests)


def test_missing_vm_is_created_then_started() -> None:
    plan = plan_vm(desired(), inventory())
    assert plan.kinds() == [ActionKind.CREATE, ActionKind.START]
    assert not plan.blockers


def test_create_resizes_when_the_disk_is_bigger_than_the_image() -> None:
    plan = plan_vm(desired(disk_size_gib=10), inventory())
    assert plan.kinds() == [ActionKind.CREATE, ActionKind.RESIZE, ActionKind.START]
    assert plan.actions[1].size_gib == 10


def test_create_refuses_a_disk_smaller_than_the_image() -> None:
    plan = plan_vm(desired(disk_size_gib=2), inventory())
    assert plan.actions == ()
    assert [b.reason for b in plan.blockers] == [BlockReason.IMAGE_TOO_LARGE]


@pytest.mark.parametrize("strategy", [RunStrategy.HALTED, RunStrategy.MANUAL])
def test_create_without_start(strategy: RunStrategy) -> None:
    assert plan_vm(desired(run_strategy=strategy), inventory()).kinds() == [ActionKind.CREATE]


def test_vmid_on_another_node_is_a_conflict() -> None:
    plan = plan_vm(desired(), inventory(cluster={100: "pve2"}))
    assert plan.actions == ()
    assert plan.blockers[0].reason == BlockReason.VMID_CONFLICT
    assert "pve2" in plan.blockers[0].message


@pytest.mark.parametrize("fixture", ["foreign.conf", "other-owner.conf"])
def test_vm_not_ours_is_never_touched(fixture: str) -> None:
    plan = plan_vm(desired(memory_mib=4096), inventory(observed(fixture, "running")))
    assert plan.actions == ()
    assert plan.blockers[0].reason == BlockReason.VMID_CONFLICT
    assert "nothing was changed" in plan.blockers[0].message


def test_in_sync_vm_needs_nothing() -> None:
    plan = plan_vm(desired(), inventory(observed("owned-running.conf", "running")))
    assert plan.in_sync, plan


def test_memory_change_on_a_running_vm_sets_and_requires_restart() -> None:
    plan = plan_vm(desired(memory_mib=4096), inventory(observed("owned-running.conf", "running")))
    assert plan.kinds() == [ActionKind.SET]
    assert plan.actions[0].options == {"memory": 4096}
    assert "memory 2048 → 4096" in plan.actions[0].reason
    assert plan.restart_required == ("memory",)


def test_memory_change_with_reboot_allowed() -> None:
    plan = plan_vm(
        desired(memory_mib=4096, reboot_for_pending=True),
        inventory(observed("owned-running.conf", "running")),
    )
    assert plan.kinds() == [ActionKind.SET, ActionKind.REBOOT]
    assert plan.restart_required == ()


def test_pending_change_already_written_is_not_set_again() -> None:
    plan = plan_vm(desired(memory_mib=4096), inventory(observed("owned-pending.conf", "running")))
    assert plan.actions == ()
    assert plan.restart_required == ("memory",)


def test_memory_change_on_a_stopped_vm_applies_at_once() -> None:
    plan = plan_vm(
        desired(memory_mib=4096, run_strategy=RunStrategy.HALTED),
        inventory(observed("owned-running.conf", "stopped")),
    )
    assert plan.kinds() == [ActionKind.SET]
    assert plan.restart_required == ()


def test_grown_disk_is_resized_in_place() -> None:
    plan = plan_vm(desired(disk_size_gib=8), inventory(observed("owned-running.conf", "running")))
    assert plan.kinds() == [ActionKind.RESIZE]
    assert plan.actions[0].size_gib == 8
    assert not plan.reimage


def test_smaller_disk_is_refused_but_other_changes_proceed() -> None:
    plan = plan_vm(desired(disk_size_gib=2, cores=4), inventory(observed("owned-running.conf", "running")))
    assert plan.kinds() == [ActionKind.SET]
    assert [b.reason for b in plan.blockers] == [BlockReason.DISK_SHRINK_REFUSED]


def test_tags_protection_onboot_name_and_bridge() -> None:
    plan = plan_vm(
        desired(tags=("web",), protection=True, onboot=False, name="web01-new", bridge="vmbr1"),
        inventory(observed("owned-running.conf", "running")),
    )
    options = plan.actions[0].options
    assert options["tags"] == "nix-aaaaaaaaaaaa;proxnix;web"
    assert options["protection"] is True
    assert options["onboot"] is False
    assert options["name"] == "web01-new"
    assert options["net0"] == "virtio=BC:24:11:00:00:01,bridge=vmbr1"
    assert plan.restart_required == ()


def test_image_change_reimages_an_unprotected_vm() -> None:
    plan = plan_vm(desired(image_sha256=NEW_IMAGE), inventory(observed("owned-running.conf", "running")))
    assert plan.reimage
    assert plan.kinds() == [ActionKind.STOP, ActionKind.DESTROY, ActionKind.CREATE, ActionKind.START]


def test_image_change_on_a_protected_vm_is_blocked() -> None:
    plan = plan_vm(
        desired(image_sha256=NEW_IMAGE, protection=True), inventory(observed("owned-running.conf", "running"))
    )
    assert ActionKind.DESTROY not in plan.kinds()
    assert [a.options for a in plan.actions] == [{"protection": True}]  # Proxmox's own flag is set too
    assert plan.blockers[0].reason == BlockReason.IMAGE_CHANGE_BLOCKED
    assert "protected" in plan.blockers[0].message


def test_locked_vm_waits() -> None:
    plan = plan_vm(desired(memory_mib=4096), inventory(observed("owned-locked.conf", "stopped")))
    assert plan.actions == ()
    assert plan.blockers[0].reason == BlockReason.VM_LOCKED
    assert plan.blockers[0].transient


@pytest.mark.parametrize(
    ("strategy", "power", "expected"),
    [
        (RunStrategy.ALWAYS, "stopped", [ActionKind.START]),
        (RunStrategy.ALWAYS, "running", []),
        (RunStrategy.HALTED, "running", [ActionKind.SHUTDOWN]),
        (RunStrategy.HALTED, "stopped", []),
        (RunStrategy.MANUAL, "stopped", []),
        (RunStrategy.MANUAL, "running", []),
        (RunStrategy.RERUN_ON_FAILURE, "stopped", []),
        (RunStrategy.ALWAYS, "unknown", []),
    ],
)
def test_power_follows_run_strategy(strategy: RunStrategy, power: str, expected: list[ActionKind]) -> None:
    plan = plan_vm(desired(run_strategy=strategy), inventory(observed("owned-running.conf", power)))
    assert plan.kinds() == expected


def test_reimage_never_destroys_when_the_new_vm_could_not_be_made() -> None:
    # The new image is larger than the disk the spec asks for: the old VM stays.
    plan = plan_vm(
        desired(image_sha256=NEW_IMAGE, image_size_bytes=8 * GIB, disk_size_gib=5),
        inventory(observed("owned-running.conf", "running")),
    )
    assert ActionKind.DESTROY not in plan.kinds()
    assert [b.reason for b in plan.blockers] == [BlockReason.IMAGE_TOO_LARGE]


def test_protected_vm_with_a_new_image_is_still_updated_in_place() -> None:
    plan = plan_vm(
        desired(image_sha256=NEW_IMAGE, protection=True, memory_mib=4096),
        inventory(observed("owned-running.conf", "running")),
    )
    assert plan.kinds() == [ActionKind.SET]
    assert plan.actions[0].options["memory"] == 4096
    assert plan.actions[0].options["protection"] is True
    assert "nix-bbbbbbbbbbbb" not in str(
        plan.actions[0].options.get("tags", "")
    )  # the marker keeps the old image
    assert plan.blockers[0].reason == BlockReason.IMAGE_CHANGE_BLOCKED


def test_unprotecting_and_changing_the_image_clears_protection_before_destroying() -> None:
    protected = observed("owned-running.conf", "running")
    assert protected.config is not None
    values = {**protected.config.values, "protection": "1"}
    flagged = replace(protected, config=replace(protected.config, values=values))
    plan = plan_vm(desired(image_sha256=NEW_IMAGE, protection=False), inventory(flagged))
    assert plan.kinds()[:3] == [ActionKind.SET, ActionKind.STOP, ActionKind.DESTROY]
    assert plan.actions[0].options == {"protection": False}


def test_unknown_old_image_is_not_reimaged() -> None:
    plan = plan_vm(desired(), inventory(observed("owned-no-image.conf", "running")))
    assert ActionKind.DESTROY not in plan.kinds()
    assert plan.blockers[0].reason == BlockReason.IMAGE_UNKNOWN


def test_create_in_progress_is_waited_for_not_a_conflict() -> None:
    plan = plan_vm(desired(), inventory(observed("placeholder-create.conf", "stopped")))
    assert plan.actions == ()
    assert plan.blockers[0].reason == BlockReason.VM_LOCKED
    assert plan.blockers[0].transient


def test_unreadable_config_is_left_alone() -> None:
    broken = VmObservation(
        vmid=100, node="pve1", config=None, power_state="running", power_source="pid", error="bad line"
    )
    plan = plan_vm(desired(), inventory(broken))
    assert plan.actions == ()
    assert plan.blockers[0].reason == BlockReason.CONFIG_UNREADABLE
