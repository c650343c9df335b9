"""The ProxmoxVM deletion step and its safety rules, against an in-memory node: the VM is destroyed only when the
policy allows it and it is provably ours; on any doubt it is kept (and the finalizer too, when the doubt may clear)."""

from __future__ import annotations

from proxnix.api.conditions import Condition
from proxnix.api.proxmoxvm import ProxmoxVMSpec, ProxmoxVMStatus
from proxnix.proxmox.errors import ConnectionLost
from proxnix.proxmox.ownership import Owner
from proxnix.reconcile.outcome import DELETE_FAILED, DELETE_NODE_MISSING, DELETE_UNJUDGED
from proxnix.reconcile.vm import VmReconciler, VmRef
from tests.support.fake_node import (
    FakeImages,
    FakeNode,
    FakeNodes,
    FakeVm,
    foreign_vm,
    owned_vm,
    retried_with,
)

UID = "11111111-2222-4333-8444-555555555555"
IMAGE = "a" * 64
OWNER = Owner("default", "web01", UID)


def ref(status: ProxmoxVMStatus | None = None, **changes: object) -> VmRef:
    spec = ProxmoxVMSpec.model_validate(
        {"node": "pve1", "vmid": 100, "image": {"source": "/nix/store/x.qcow2"}, **changes}
    )
    return VmRef("default", "web01", UID, 1, spec, status or ProxmoxVMStatus())


def world(**node: object) -> tuple[VmReconciler, FakeNode]:
    fake = FakeNode(**node)  # type: ignore[arg-type]
    return VmReconciler(FakeNodes({"pve1": fake}), FakeImages()), fake


def destroyed(node: FakeNode) -> bool:
    return any(what == "destroy" for what, _ in node.calls)


async def test_our_vm_is_destroyed() -> None:
    reconciler, node = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.delete(ref())
    assert outcome.done
    assert 100 not in node.vms
    assert [e.reason for e in outcome.events] == ["Destroyed"]


async def test_a_vm_already_gone_lets_the_object_go() -> None:
    reconciler, node = world()
    outcome = await reconciler.delete(ref())
    assert outcome.done
    assert [e.reason for e in outcome.events] == ["AlreadyGone"]
    assert not destroyed(node)


async def test_retain_policy_keeps_the_vm() -> None:
    reconciler, node = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.delete(ref(deletionPolicy="Retain"))
    assert outcome.done
    assert not destroyed(node)
    assert 100 in node.vms


async def test_a_protected_object_never_destroys_its_vm() -> None:
    reconciler, node = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.delete(ref(protected=True))
    assert outcome.done
    assert not destroyed(node)
    assert [e.reason for e in outcome.events] == ["Retained"]


async def test_a_vm_with_proxmox_protection_is_never_destroyed() -> None:
    reconciler, node = world()
    node.vms[100] = owned_vm(OWNER, IMAGE, protection=True)
    outcome = await reconciler.delete(ref())
    assert outcome.done
    assert not destroyed(node)
    assert 100 in node.vms
    assert [(e.type, e.reason) for e in outcome.events] == [("Warning", "Retained")]


async def test_a_vm_that_is_not_ours_is_never_destroyed() -> None:
    reconciler, node = world()
    node.vms[100] = foreign_vm()
    outcome = await reconciler.delete(ref())
    assert outcome.done  # the object goes; the VM stays
    assert not destroyed(node)
    assert 100 in node.vms
    assert [(e.type, e.reason) for e in outcome.events] == [("Warning", "NotOwned")]


async def test_a_vm_of_another_object_is_never_destroyed() -> None:
    reconciler, node = world()
    node.vms[100] = owned_vm(Owner("default", "web01", "99999999-2222-4333-8444-555555555555"), IMAGE)
    outcome = await reconciler.delete(ref())
    assert not destroyed(node)
    assert [e.reason for e in outcome.events] == ["NotOwned"]


async def test_nothing_is_destroyed_on_an_unreachable_node_and_the_finalizer_stays() -> None:
    reconciler, node = world(reachable=False)
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.delete(ref())
    assert not outcome.done
    assert retried_with(outcome) == DELETE_FAILED
    assert not destroyed(node)


async def test_a_failed_destroy_keeps_the_finalizer() -> None:
    reconciler, node = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    node.fail_on["destroy"] = ConnectionLost("connection lost", node="pve1")
    outcome = await reconciler.delete(ref())
    assert not outcome.done
    assert retried_with(outcome) == DELETE_FAILED


async def test_a_missing_node_keeps_the_finalizer() -> None:
    reconciler = VmReconciler(FakeNodes(), FakeImages())
    outcome = await reconciler.delete(ref())
    assert not outcome.done
    assert retried_with(outcome) == DELETE_NODE_MISSING


async def test_a_create_in_progress_is_not_judged_yet() -> None:
    reconciler, node = world()
    node.vms[100] = FakeVm({"lock": "create"})
    outcome = await reconciler.delete(ref())
    assert not outcome.done
    assert retried_with(outcome) == DELETE_UNJUDGED
    assert not destroyed(node)


async def test_the_vm_the_object_made_is_the_one_destroyed_even_after_an_edit_of_the_spec() -> None:
    reconciler, node = world()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    node.vms[101] = foreign_vm()
    status = ProxmoxVMStatus(
        vmid=100, node="pve1", conditions=[Condition(type="Provisioned", status="True", reason="Created")]
    )
    outcome = await reconciler.delete(ref(status, vmid=101))
    assert outcome.done
    assert [c for c in node.calls if c[0] == "destroy"] == [("destroy", 100)]
    assert 101 in node.vms
