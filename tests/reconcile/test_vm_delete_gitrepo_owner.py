"""A ProxmoxVM rendered from a GitRepo, deleted by the garbage collector's cascade (a foreground delete of the
GitRepo): the GitRepo's deletionPolicy, not the VM's own default (Delete), decides. Orphan (the default) or a GitRepo
that is gone keeps the VM on the node (Retained); Delete lets each VM follow its own deletionPolicy; a live GitRepo's
prune does too."""

from __future__ import annotations

from typing import Any

from proxnix.api.proxmoxvm import ProxmoxVMSpec, ProxmoxVMStatus
from proxnix.proxmox.ownership import Owner
from proxnix.reconcile.outcome import Outcome
from proxnix.reconcile.vm import VmReconciler, VmRef, kept_for_gitrepo
from tests.support.fake_node import FakeImages, FakeNode, FakeNodes, owned_vm

UID = "11111111-2222-4333-8444-555555555555"
REPO_UID = "3f1c0d2e-0000-4000-8000-000000000001"
IMAGE = "a" * 64
OWNER = Owner("default", "web01", UID)
CONTROLLER = {
    "apiVersion": "proxnix.io/v1alpha1",
    "kind": "GitRepo",
    "name": "infra",
    "uid": REPO_UID,
    "controller": True,
    "blockOwnerDeletion": True,
}


def ref(*owners: dict[str, Any]) -> VmRef:
    spec = ProxmoxVMSpec.model_validate(
        {"node": "pve1", "vmid": 100, "image": {"source": "/nix/store/x.qcow2"}}
    )
    return VmRef("default", "web01", UID, 1, spec, ProxmoxVMStatus(), owner_references=owners)


def gitrepo(*, deleting: bool, policy: str | None = None, uid: str = REPO_UID) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "infra", "namespace": "default", "uid": uid}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-02T09:30:00Z"
    spec: dict[str, Any] = {"url": "file:///srv/git/fleet.git"}
    if policy is not None:
        spec["deletionPolicy"] = policy
    return {"metadata": metadata, "spec": spec}


async def delete(vm: VmRef, repo: dict[str, Any] | None) -> tuple[Outcome, FakeNode]:
    """What the ProxmoxVM delete handler does: the GitRepo's verdict first, else the VM's own deletion step."""
    node = FakeNode()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    reconciler = VmReconciler(FakeNodes({"pve1": node}), FakeImages())
    outcome = kept_for_gitrepo(vm, repo) or await reconciler.delete(vm)
    return outcome, node


async def test_a_foreground_delete_of_an_orphan_gitrepo_keeps_the_vm() -> None:
    for policy in (None, "Orphan"):
        outcome, node = await delete(ref(CONTROLLER), gitrepo(deleting=True, policy=policy))
        assert outcome.done
        assert 100 in node.vms
        assert not any(what == "destroy" for what, _ in node.calls)
        [event] = outcome.events
        assert event.reason == "Retained"
        assert "'infra' is being deleted with deletionPolicy Orphan" in event.message


async def test_a_gone_gitrepo_keeps_the_vm() -> None:
    for repo in (
        None,
        gitrepo(deleting=False, uid="3f1c0d2e-0000-4000-8000-00000000000f"),
    ):  # gone, or recreated
        outcome, node = await delete(ref(CONTROLLER), repo)
        assert outcome.done
        assert 100 in node.vms
        assert [e.reason for e in outcome.events] == ["Retained"]
        assert "gone" in outcome.events[0].message


async def test_a_gitrepo_with_deletion_policy_delete_lets_the_vm_follow_its_own_policy() -> None:
    outcome, node = await delete(ref(CONTROLLER), gitrepo(deleting=True, policy="Delete"))
    assert outcome.done
    assert 100 not in node.vms
    assert [e.reason for e in outcome.events] == ["Destroyed"]


async def test_a_live_gitrepos_prune_and_an_unowned_object_follow_the_vms_policy() -> None:
    not_controller = {**CONTROLLER, "controller": False}
    for vm, repo in ((ref(CONTROLLER), gitrepo(deleting=False)), (ref(), None), (ref(not_controller), None)):
        outcome, node = await delete(vm, repo)
        assert 100 not in node.vms
        assert [e.reason for e in outcome.events] == ["Destroyed"]
