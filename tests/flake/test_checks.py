"""Whole-commit checks: the captured broken variants each stop the commit, saying which VMs and why."""

from __future__ import annotations

import pytest

from proxnix.sources.flake.checks import (
    CommitRejected,
    RejectReason,
    check_commit,
    check_image_types,
    used_image_types,
)
from proxnix.sources.flake.vms import FlakeFormatError, parse_vms
from tests.flake.conftest import eval_output

NODES = {"pve1", "pve2"}


def test_the_fleet_passes_and_uses_two_images() -> None:
    vms = parse_vms(eval_output("fleet"))
    check_commit(vms, default_node="pve1", known_nodes=NODES, claimed_vmids={})
    check_image_types(vms, {"web", "db"})
    assert used_image_types(vms) == ["db", "web"]


def test_duplicate_vmid_within_the_flake() -> None:
    vms = parse_vms(eval_output("duplicate-vmid"))
    with pytest.raises(CommitRejected) as caught:
        check_commit(vms, default_node="pve1", known_nodes=NODES, claimed_vmids={})
    assert caught.value.reason is RejectReason.DUPLICATE_VMID
    assert caught.value.message == "VMID 100 is used by more than one VM: web01, web02"


def test_vmid_of_another_gitrepo() -> None:
    vms = parse_vms(eval_output("fleet"))
    with pytest.raises(CommitRejected) as caught:
        check_commit(
            vms, default_node="pve1", known_nodes=NODES, claimed_vmids={110: "ProxmoxVM pg of GitRepo other"}
        )
    assert caught.value.message == "vms.db01.vm_id: VMID 110 is already used by ProxmoxVM pg of GitRepo other"


def test_unknown_image_type() -> None:
    vms = parse_vms(eval_output("unknown-image"))
    with pytest.raises(CommitRejected) as caught:
        check_image_types(vms, {"web", "db"})
    assert caught.value.reason is RejectReason.UNKNOWN_IMAGE_TYPE
    assert caught.value.message.startswith("vms.web01.image_type: the flake has no nixosConfigurations.mail")


def test_nodes_unknown_or_missing() -> None:
    vms = parse_vms(eval_output("fleet"))
    with pytest.raises(CommitRejected) as caught:
        check_commit(vms, default_node=None, known_nodes={"pve1"}, claimed_vmids={})
    assert [p.message for p in caught.value.problems] == [
        "vms.db01.node: no ProxmoxNode 'pve2' in this namespace",
        "vms.web01.node: not set, and the GitRepo has no defaultNode",
        "vms.web02.node: not set, and the GitRepo has no defaultNode",
    ]
    assert caught.value.reason is RejectReason.UNKNOWN_NODE


def test_name_clash_after_lowercasing() -> None:
    output = eval_output("fleet")
    output["vms"]["web02"]["name"] = "WEB01"
    with pytest.raises(CommitRejected) as caught:
        check_commit(parse_vms(output), default_node="pve1", known_nodes=NODES, claimed_vmids={})
    assert caught.value.reason is RejectReason.NAME_CLASH
    assert "web01, web02 all render to the ProxmoxVM 'web01'" in caught.value.message


def test_an_invalid_vm_is_a_rejection_with_every_problem() -> None:
    with pytest.raises(FlakeFormatError) as caught:
        parse_vms(eval_output("invalid-vm"))
    rejected = CommitRejected.from_format_error(caught.value)
    assert rejected.reason is RejectReason.INVALID_VM
    assert rejected.message == (
        "vms.web02.cores: Input should be greater than or equal to 1; vms.web02.storage_location: Field required"
    )
