"""The ProxmoxVM object as the reconcile steps see it (`VmRef`, its spec validated), and two small readers of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxnix.api.conditions import ConditionType, find_condition
from proxnix.api.gitrepo import INFO as GITREPO
from proxnix.api.meta import API_VERSION
from proxnix.api.proxmoxvm import ProxmoxVMSpec, ProxmoxVMStatus
from proxnix.proxmox.ownership import Owner


@dataclass(frozen=True)
class VmRef:
    """The ProxmoxVM object being reconciled."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: ProxmoxVMSpec
    status: ProxmoxVMStatus
    requested_at: str = ""
    owner_references: tuple[Mapping[str, Any], ...] = ()

    @property
    def owner(self) -> Owner:
        return Owner(namespace=self.namespace, name=self.name, uid=self.uid)

    @property
    def controlling_gitrepo(self) -> Mapping[str, Any] | None:
        """The controller ownerReference when it names a GitRepo (the object was rendered from a flake)."""
        for ref in self.owner_references:
            if (
                ref.get("controller")
                and ref.get("kind") == GITREPO.kind
                and ref.get("apiVersion") == API_VERSION
            ):
                return ref
        return None


def provisioned(status: ProxmoxVMStatus) -> bool:
    """Whether the status says the VM was created (Provisioned=True)."""
    found = find_condition(status.conditions, ConditionType.PROVISIONED)
    return found is not None and found.status == "True"
