"""What the ProxmoxVM reconcile steps take and give: the object (`VmRef`), the Events to post, the outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class VmEvent:
    """A Kubernetes Event to record on the object."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class VmOutcome:
    """The result of one reconcile: the status to write, the events to post, and whether to retry."""

    status: ProxmoxVMStatus
    events: list[VmEvent] = field(default_factory=list)
    retry_after: float | None = None
    retry_reason: str = ""
    stalled: bool = False
    waiting_for_agent: bool = False


@dataclass
class DeleteOutcome:
    """The result of a deletion attempt: done (the finalizer may go) or retry."""

    done: bool
    events: list[VmEvent] = field(default_factory=list)
    retry_after: float | None = None
    message: str = ""


def provisioned(status: ProxmoxVMStatus) -> bool:
    found = find_condition(status.conditions, ConditionType.PROVISIONED)
    return found is not None and found.status == "True"


def short(exc: BaseException, limit: int = 400) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"
