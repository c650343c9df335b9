"""ProxmoxNode: one Proxmox VE node the operator reaches over SSH, and what it last saw of it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from proxnix.api.conditions import Condition, ConditionType
from proxnix.api.kinds import AGE_COLUMN, KindInfo, PrinterColumn, ready_columns
from proxnix.api.meta import ApiModel, LocalObjectReference, StatusModel
from proxnix.api.scalars import BridgeName, DnsName, Duration, Host, StorageId, UserName
from proxnix.api.summarize import Readiness

ABS_PATH_PATTERN = r"^/[A-Za-z0-9._/+-]*$"


class HostKeyPolicy(StrEnum):
    """How the node's SSH host key is checked."""

    VERIFY = "Verify"
    TRUST_ON_FIRST_USE = "TrustOnFirstUse"


class ProxmoxNodeSpec(ApiModel):
    """How to reach one Proxmox VE node over SSH, and the defaults for VMs placed on it."""

    node_name: DnsName | None = Field(
        default=None,
        description="The Proxmox node name (as `pvesh get /nodes` shows it). Defaults to metadata.name.",
    )
    host: Host = Field(description="Host name or IP address of the node's SSH server.")
    port: int = Field(default=22, ge=1, le=65535, description="SSH port of the node.")
    user: UserName = Field(
        default="root", description="SSH login user; it must be allowed to run qm and pvesh."
    )
    credentials_secret_ref: LocalObjectReference = Field(
        description=(
            "A Secret in the same namespace with keys `ssh-privatekey` (an OpenSSH private key) and `known_hosts` "
            "(the node's host key lines). The operator re-reads it when it changes."
        ),
    )
    host_key_policy: HostKeyPolicy = Field(
        default=HostKeyPolicy.VERIFY,
        description=(
            "Verify: the host key must match `known_hosts` in the Secret. TrustOnFirstUse: when `known_hosts` is "
            "empty, accept the first key seen and record its fingerprint in status.hostKeyFingerprint."
        ),
    )
    max_sessions: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Size of the SSH pool: at most this many commands run on the node at once.",
    )
    default_storage: StorageId = Field(
        default="local-lvm",
        description="Storage for VM disks and cloud-init drives when a ProxmoxVM names none.",
    )
    default_bridge: BridgeName = Field(
        default="vmbr0",
        description="Network bridge for VMs that name none.",
    )
    image_cache_dir: str = Field(
        default="/var/lib/vz/proxnix/images",
        pattern=ABS_PATH_PATTERN,
        max_length=255,
        description="Folder on the node where images are uploaded, named by their sha256, before import.",
    )
    probe_interval: Duration = Field(
        default="30s",
        description="How often the node is probed for reachability and version.",
    )


class ProxmoxNodeStatus(StatusModel):
    """What the operator last observed of the node."""

    observed_generation: int = Field(default=0, description="The .metadata.generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, NodeReachable, Reconciling, Stalled.",
    )
    reachable: bool = Field(default=False, description="Whether the last probe reached the node over SSH.")
    pve_version: str = Field(default="", description="Proxmox VE version the node reports (pveversion).")
    vm_count: int = Field(default=0, description="Number of VMs on the node at the last probe.")
    last_probe_time: str = Field(default="", description="RFC 3339 time of the last probe.")
    host_key_fingerprint: str = Field(
        default="",
        description="SHA256 fingerprint of the host key accepted (recorded under TrustOnFirstUse).",
    )


INFO = KindInfo(
    kind="ProxmoxNode",
    plural="proxmoxnodes",
    singular="proxmoxnode",
    short_names=("pnode", "pnodes"),
    description="A Proxmox VE node reached over SSH, on which ProxmoxVMs are placed.",
    spec_model=ProxmoxNodeSpec,
    status_model=ProxmoxNodeStatus,
    printer_columns=(
        PrinterColumn("Host", "string", ".spec.host", "SSH host of the node."),
        *ready_columns(),
        PrinterColumn("VMs", "integer", ".status.vmCount", "Number of VMs on the node."),
        PrinterColumn("Version", "string", ".status.pveVersion", "Proxmox VE version."),
        AGE_COLUMN,
    ),
)

READINESS = Readiness(depends_on=(ConditionType.NODE_REACHABLE,), success_reason="Reachable")
"""Ready is True when these are (and nothing is stalled or in progress); see `proxnix.api.summarize`."""
