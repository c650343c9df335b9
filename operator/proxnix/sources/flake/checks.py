"""Whole-commit checks: a commit is applied whole or not at all.

Any invalid VM, a VMID used twice in the flake or already used by a VM this GitRepo does not own, an image_type the
flake does not build, a VM without a known node, or two VMs rendering to the same ProxmoxVM name stop the commit
with one error that says which VMs and why (a reason for the Ready condition and a message listing every problem).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from proxnix.sources.flake.vms import FlakeFormatError, FlakeVM


class RejectReason(StrEnum):
    """Why a commit was not applied (the Ready condition's reason)."""

    INVALID_VM = "InvalidVM"
    DUPLICATE_VMID = "DuplicateVMID"
    UNKNOWN_IMAGE_TYPE = "UnknownImageType"
    UNKNOWN_NODE = "UnknownNode"
    NAME_CLASH = "NameClash"


@dataclass(frozen=True)
class Problem:
    """One reason a commit cannot be applied."""

    reason: RejectReason
    message: str


class CommitRejected(Exception):
    """The commit is not applied; `reason` is the first problem's, `message` lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.reason = problems[0].reason
        self.message = "; ".join(p.message for p in problems)
        super().__init__(self.message)

    @classmethod
    def from_format_error(cls, error: FlakeFormatError) -> CommitRejected:
        return cls([Problem(RejectReason.INVALID_VM, problem) for problem in error.problems])


def node_of(vm: FlakeVM, default_node: str | None) -> str | None:
    """The ProxmoxNode a VM runs on: its own `node`, else the GitRepo's defaultNode."""
    return vm.node or default_node


def check_commit(
    vms: Mapping[str, FlakeVM],
    *,
    default_node: str | None,
    known_nodes: Collection[str],
    claimed_vmids: Mapping[int, str],
) -> None:
    """Raise CommitRejected unless every VM can be applied.

    `claimed_vmids` maps VMIDs used by ProxmoxVMs this GitRepo does not own to a description of who uses them.
    """
    problems: list[Problem] = []
    by_vmid: dict[int, list[str]] = defaultdict(list)
    by_name: dict[str, list[str]] = defaultdict(list)
    for key, vm in sorted(vms.items()):
        by_vmid[vm.vm_id].append(key)
        by_name[vm.object_name].append(key)
        node = node_of(vm, default_node)
        if node is None:
            problems.append(
                Problem(
                    RejectReason.UNKNOWN_NODE,
                    f"vms.{key}.node: not set, and the GitRepo has no defaultNode",
                )
            )
        elif node not in known_nodes:
            problems.append(
                Problem(
                    RejectReason.UNKNOWN_NODE, f"vms.{key}.node: no ProxmoxNode {node!r} in this namespace"
                )
            )
        if vm.vm_id in claimed_vmids:
            problems.append(
                Problem(
                    RejectReason.DUPLICATE_VMID,
                    f"vms.{key}.vm_id: VMID {vm.vm_id} is already used by {claimed_vmids[vm.vm_id]}",
                )
            )
    for vmid, keys in sorted(by_vmid.items()):
        if len(keys) > 1:
            problems.append(
                Problem(
                    RejectReason.DUPLICATE_VMID, f"VMID {vmid} is used by more than one VM: {', '.join(keys)}"
                )
            )
    for name, keys in sorted(by_name.items()):
        if len(keys) > 1:
            problems.append(
                Problem(
                    RejectReason.NAME_CLASH,
                    f"VMs {', '.join(keys)} all render to the ProxmoxVM {name!r} (names are compared lowercase)",
                )
            )
    if problems:
        raise CommitRejected(problems)


def check_image_types(vms: Mapping[str, FlakeVM], buildable: Collection[str]) -> None:
    """Raise CommitRejected when a VM names an image_type the flake does not build as a qcow2."""
    problems = [
        Problem(
            RejectReason.UNKNOWN_IMAGE_TYPE,
            f"vms.{key}.image_type: the flake has no nixosConfigurations.{vm.image_type} with "
            "config.system.build.qcow2 or config.system.build.images.qemu",
        )
        for key, vm in sorted(vms.items())
        if vm.image_type not in buildable
    ]
    if problems:
        raise CommitRejected(problems)


def used_image_types(vms: Mapping[str, FlakeVM]) -> list[str]:
    """The image types the VMs use, each once, sorted: exactly what is built."""
    return sorted({vm.image_type for vm in vms.values()})
