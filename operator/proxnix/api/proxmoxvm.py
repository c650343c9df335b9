"""ProxmoxVM: one VM on a Proxmox node — its desired shape (spec) and what the node reports (status)."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from proxnix.api.conditions import Condition, ConditionType
from proxnix.api.kinds import AGE_COLUMN, KindInfo, PrinterColumn, ready_columns
from proxnix.api.meta import LIST_SET, OBJECT_DEFAULT, ApiModel, K8sName, StatusModel, cel_rule
from proxnix.api.scalars import BridgeName, DnsName, Sha256, StorageId, Tag, UserName, VmId
from proxnix.api.summarize import Readiness

DISK_SLOT_PATTERN = r"^(scsi|virtio|sata|ide)[0-9]{1,2}$"
# Where an image comes from: an absolute path on the operator's machine (nix store paths included) or an
# http(s) URL. No whitespace, quotes or shell metacharacters in either; no user:password@ in a URL (a spec is no
# place for credentials: every reader of the object, its Events and the audit log would see them).
IMAGE_SOURCE_PATTERN = (
    r"^(/[A-Za-z0-9._/+=-]+|https?://[A-Za-z0-9._~:!&'()*+,;=%-]+([/?#][A-Za-z0-9._~:/?#@!&'()*+,;=%-]*)?)$"
)
# One OpenSSH public key line: type, base64 key, optional comment (no control characters: NUL, newline, ...).
SSH_KEY_PATTERN = r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\x00-\x1f\x7f]*)?$"
SshPublicKey = Annotated[str, StringConstraints(pattern=SSH_KEY_PATTERN, max_length=16384)]


def _immutable(field: str) -> dict[str, Any]:
    """A CEL rule (enforced by the API server) that keeps a field as it was created."""
    return cel_rule("self == oldSelf", f"{field} cannot be changed; create a new ProxmoxVM instead")


class ScsiHardware(StrEnum):
    """SCSI controller models Proxmox accepts for `scsihw`."""

    LSI = "lsi"
    LSI53C810 = "lsi53c810"
    VIRTIO_SCSI_PCI = "virtio-scsi-pci"
    VIRTIO_SCSI_SINGLE = "virtio-scsi-single"
    MEGASAS = "megasas"
    PVSCSI = "pvscsi"


class NetworkModel(StrEnum):
    """NIC models."""

    VIRTIO = "virtio"
    E1000 = "e1000"
    RTL8139 = "rtl8139"
    VMXNET3 = "vmxnet3"


class RunStrategy(StrEnum):
    """What power state the operator keeps the VM in (KubeVirt's names)."""

    ALWAYS = "Always"
    HALTED = "Halted"
    MANUAL = "Manual"
    RERUN_ON_FAILURE = "RerunOnFailure"


class DeletionPolicy(StrEnum):
    """What happens to the Proxmox VM when its ProxmoxVM object is deleted."""

    DELETE = "Delete"
    RETAIN = "Retain"


class Phase(StrEnum):
    """Lifecycle phase shown in `kubectl get` (a summary; conditions carry the detail)."""

    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPED = "Stopped"
    UPDATING = "Updating"
    REIMAGING = "Reimaging"
    DELETING = "Deleting"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


class DiskSpec(ApiModel):
    """The boot disk, made from the image."""

    model_config = ConfigDict(
        json_schema_extra=cel_rule(
            "!has(oldSelf.sizeGiB) || (has(self.sizeGiB) && self.sizeGiB >= oldSelf.sizeGiB)",
            "disk.sizeGiB cannot shrink (a disk is only ever grown in place)",
        )
    )

    size_gib: int | None = Field(
        default=None,
        ge=1,
        le=65536,
        alias="sizeGiB",
        description="Disk size in GiB. Defaults to the image's size; growing it resizes in place, shrinking is refused.",
    )
    storage: StorageId | None = Field(
        default=None,
        description="Proxmox storage for the disk. Defaults to the node's defaultStorage.",
    )
    slot: str = Field(
        default="scsi0",
        pattern=DISK_SLOT_PATTERN,
        description="Bus and index of the disk, e.g. scsi0 or virtio0.",
    )


class NetworkSpec(ApiModel):
    """The first network interface (net0)."""

    bridge: BridgeName | None = Field(
        default=None,
        description="Bridge to attach net0 to. Defaults to the node's defaultBridge.",
    )
    model: NetworkModel = Field(default=NetworkModel.VIRTIO, description="NIC model.")


class ImageSpec(ApiModel):
    """The disk image the VM boots (a NixOS qcow2 built from the flake)."""

    source: str = Field(
        pattern=IMAGE_SOURCE_PATTERN,
        max_length=2048,
        description=(
            "Where the image is: an absolute path on the operator's machine or an http(s) URL. A path is used only "
            "if, after following symbolic links and `..`, it lies under one of the operator's image roots "
            "(`proxnix operator --image-root`, default /nix/store); any other path is refused (condition "
            "ImageSourceForbidden). A URL must not carry credentials (user:password@); it is downloaded once by the "
            "operator, checked (length, qemu-img) and, when `sha256` is set, verified; an operator started with "
            "--require-image-sha256 refuses URLs without `sha256`. A qcow2 with a backing file is refused."
        ),
    )
    sha256: Sha256 | None = Field(
        default=None,
        description=(
            "Expected sha256 of the image file (lowercase hex); recommended for URLs. Checked after download and "
            "after upload; names it in the node's cache."
        ),
    )


class IpConfig(ApiModel):
    """IPv4 configuration handed to cloud-init (ipconfig0)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rule(
            "!has(self.gateway) || self.address != 'dhcp'", "gateway is only allowed with a static address"
        )
    )

    address: str = Field(
        default="dhcp",
        max_length=64,
        pattern=r"^(dhcp|[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2})$",
        description="`dhcp`, or a static address in CIDR form, e.g. 192.0.2.10/24.",
    )
    gateway: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$",
        description="IPv4 gateway; only with a static address.",
    )

    @field_validator("address")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        if value != "dhcp":
            ipaddress.IPv4Interface(value)
        return value

    @field_validator("gateway")
    @classmethod
    def _valid_gateway(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.IPv4Address(value)
        return value

    @model_validator(mode="after")
    def _gateway_needs_static(self) -> IpConfig:
        if self.gateway is not None and self.address == "dhcp":
            raise ValueError("gateway is only allowed with a static address")
        return self


class CloudInitSpec(ApiModel):
    """Cloud-init settings (a cloud-init drive is attached when this is present)."""

    storage: StorageId | None = Field(
        default=None,
        description="Storage of the cloud-init drive. Defaults to the node's defaultStorage.",
    )
    user: UserName | None = Field(default=None, description="Default user created by cloud-init (ciuser).")
    ssh_authorized_keys: list[SshPublicKey] = Field(
        default_factory=list,
        max_length=64,
        description="OpenSSH public keys authorized for the user (sshkeys).",
    )
    ip_config: IpConfig = Field(
        default_factory=IpConfig,
        description="IPv4 configuration of net0 (ipconfig0).",
        json_schema_extra=OBJECT_DEFAULT,
    )


class ProxmoxVMSpec(ApiModel):
    """The desired VM: where it runs, its shape, its image and how the operator treats it."""

    node: K8sName = Field(
        description="Name of the ProxmoxNode (same namespace) the VM runs on. Cannot be changed: proxnix does not "
        "move VMs.",
        json_schema_extra=_immutable("node"),
    )
    vmid: VmId = Field(
        description="Proxmox VM ID, unique in the Proxmox cluster (100..999999999). Cannot be changed.",
        json_schema_extra=_immutable("vmid"),
    )
    name: DnsName | None = Field(
        default=None,
        description="Proxmox VM name (a DNS name). Defaults to metadata.name.",
    )
    cores: int = Field(default=1, ge=1, le=512, description="CPU cores per socket.")
    sockets: int = Field(default=1, ge=1, le=16, description="CPU sockets.")
    memory_mib: int = Field(default=512, ge=16, le=8_388_608, alias="memoryMiB", description="Memory in MiB.")
    disk: DiskSpec = Field(
        default_factory=DiskSpec,
        description="The boot disk, made from the image.",
        json_schema_extra=OBJECT_DEFAULT,
    )
    network: NetworkSpec = Field(
        default_factory=NetworkSpec,
        description="The first network interface.",
        json_schema_extra=OBJECT_DEFAULT,
    )
    scsi_hardware: ScsiHardware = Field(
        default=ScsiHardware.VIRTIO_SCSI_PCI,
        description="SCSI controller model (scsihw).",
    )
    image: ImageSpec = Field(description="The disk image the VM boots.")
    cloud_init: CloudInitSpec | None = Field(
        default=None,
        description="Cloud-init settings; omit for images that configure themselves (NixOS images usually do).",
    )
    on_boot: bool = Field(default=True, description="Start the VM when the node boots (onboot).")
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=32,
        description="Extra Proxmox tags (lowercase). The operator adds its own ownership tags.",
        json_schema_extra=LIST_SET,
    )
    protected: bool = Field(
        default=False,
        description=(
            "Never destroy or reimage the VM; also sets Proxmox's own `protection: 1`. Drift is reported, not corrected "
            "by recreation."
        ),
    )
    run_strategy: RunStrategy = Field(
        default=RunStrategy.ALWAYS,
        description=(
            "Always: keep running (start when stopped). Halted: keep stopped. Manual: never change the power state, "
            "only report it. RerunOnFailure: start it when created; afterwards a stopped VM is left stopped and "
            "reported (Proxmox does not tell a guest's own shutdown from a crash, so it is not restarted)."
        ),
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="Delete: destroy the VM when this object is deleted (unless protected). Retain: keep it.",
    )
    reboot_for_pending_changes: bool = Field(
        default=False,
        description=(
            "Reboot a running VM when an update (cores, sockets, memory) stays pending until restart. When false, "
            "the RestartRequired condition says so and the VM keeps running."
        ),
    )

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("tags must be unique")
        return value


class ObservedVM(StatusModel):
    """The VM as the node last reported it."""

    power_state: str = Field(default="", description="running, stopped, paused, … as `qm status` reports it.")
    cores: int | None = Field(default=None, description="Cores in the node's config (pending value if any).")
    sockets: int | None = Field(default=None, description="Sockets in the node's config.")
    memory_mib: int | None = Field(
        default=None, alias="memoryMiB", description="Memory in MiB in the node's config."
    )
    disk_gib: float | None = Field(default=None, alias="diskGiB", description="Size of the boot disk in GiB.")
    tags: list[str] = Field(default_factory=list, description="Tags on the VM.")
    protection: bool = Field(default=False, description="Proxmox's protection flag.")
    on_boot: bool | None = Field(default=None, description="Proxmox's onboot flag.")
    lock: str = Field(default="", description="A config lock held on the VM (backup, migrate, …), if any.")
    pending: list[str] = Field(
        default_factory=list, description="Config keys with changes pending until restart."
    )


class ProxmoxVMStatus(StatusModel):
    """What the operator did and what the node reports."""

    observed_generation: int = Field(default=0, description="The .metadata.generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Provisioned, InSync, RestartRequired, AgentConnected, Reconciling, Stalled.",
    )
    phase: Phase = Field(default=Phase.PENDING, description="Lifecycle phase (a summary of the conditions).")
    node: str = Field(default="", description="Proxmox node the VM is on.")
    vmid: int | None = Field(default=None, description="Proxmox VM ID of the VM.")
    ip_addresses: list[str] = Field(
        default_factory=list, description="IP addresses reported by the guest agent."
    )
    image_sha256: str = Field(default="", description="sha256 of the image the VM's disk was made from.")
    image_short: str = Field(default="", description="First 12 hex digits of imageSha256 (for kubectl get).")
    observed: ObservedVM = Field(
        default_factory=ObservedVM, description="The VM as the node last reported it."
    )
    last_sync_time: str = Field(default="", description="RFC 3339 time the node was last observed.")
    last_handled_reconcile_at: str = Field(
        default="",
        description="The value of the proxnix.io/requested-at annotation last handled.",
    )


INFO = KindInfo(
    kind="ProxmoxVM",
    plural="proxmoxvms",
    singular="proxmoxvm",
    short_names=("pvm", "pvms"),
    description="A VM on a Proxmox node, made from a disk image and kept in sync with its spec.",
    spec_model=ProxmoxVMSpec,
    status_model=ProxmoxVMStatus,
    printer_columns=(
        PrinterColumn("Node", "string", ".spec.node", "ProxmoxNode the VM runs on."),
        PrinterColumn("VMID", "integer", ".spec.vmid", "Proxmox VM ID."),
        PrinterColumn("Status", "string", ".status.phase", "Lifecycle phase."),
        PrinterColumn(
            "IP", "string", ".status.ipAddresses[0]", "First IP address reported by the guest agent."
        ),
        PrinterColumn("Image", "string", ".status.imageShort", "Short sha256 of the image the VM runs."),
        *ready_columns(),
        PrinterColumn("Cores", "integer", ".spec.cores", "CPU cores per socket.", priority=1),
        PrinterColumn("Memory", "integer", ".spec.memoryMiB", "Memory in MiB.", priority=1),
        AGE_COLUMN,
    ),
)

READINESS = Readiness(depends_on=(ConditionType.PROVISIONED, ConditionType.IN_SYNC))
"""Ready is True when these are (and nothing is stalled or in progress); see `proxnix.api.summarize`."""
