"""The ProxmoxVM object as the reconcile steps see it (`VmRef`, its spec validated), and two small readers of it."""

from __future__ import annotations

from dataclasses import dataclass

from proxnix.api.conditions import ConditionType, find_condition
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

    @property
    def owner(self) -> Owner:
        return Owner(namespace=self.namespace, name=self.name, uid=self.uid)


def provisioned(status: ProxmoxVMStatus) -> bool:
    """Whether the status says the VM was created (Provisioned=True)."""
    found = find_condition(status.conditions, ConditionType.PROVISIONED)
    return found is not None and found.status == "True"
