"""A VM definition with every default resolved: a ProxmoxVM spec plus its ProxmoxNode's defaults, re-validated.

Command builders take this (or validated primitives) rather than the API models, so what reaches `qm` is decided in
one place: the VM name defaults to the object's name, the storage and bridge to the node's.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.api.proxmoxvm import NetworkModel, ProxmoxVMSpec, ScsiHardware
from proxnix.proxmox.shell import (
    check_bridge,
    check_dns_name,
    check_int,
    check_pattern,
    check_slot,
    check_storage,
    check_tag,
    check_vmid,
)

IPCONFIG_PATTERN = r"^ip=(dhcp|[0-9.]+/[0-9]{1,2}(,gw=[0-9.]+)?)$"


@dataclass(frozen=True)
class CloudInitDefinition:
    storage: str
    user: str | None
    ssh_authorized_keys: tuple[str, ...]
    ipconfig0: str

    def __post_init__(self) -> None:
        check_storage(self.storage)
        if self.user is not None:
            check_pattern(self.user, r"^[a-z_][a-z0-9_-]*$", "cloud-init user", max_length=32)
        check_pattern(self.ipconfig0, IPCONFIG_PATTERN, "ipconfig0", max_length=64)
        for key in self.ssh_authorized_keys:
            if "\n" in key or "\r" in key or "\x00" in key:
                raise ValueError("an SSH key must be one line")


@dataclass(frozen=True)
class VmDefinition:
    """What the VM on the node should look like."""

    vmid: int
    name: str
    cores: int
    sockets: int
    memory_mib: int
    scsihw: str
    disk_slot: str
    disk_storage: str
    disk_size_gib: int | None
    bridge: str
    net_model: str
    onboot: bool
    protection: bool
    tags: tuple[str, ...] = ()
    cloud_init: CloudInitDefinition | None = None

    def __post_init__(self) -> None:
        check_vmid(self.vmid)
        check_dns_name(self.name, "VM name")
        check_int(self.cores, "cores", minimum=1, maximum=512)
        check_int(self.sockets, "sockets", minimum=1, maximum=16)
        check_int(self.memory_mib, "memory", minimum=16, maximum=8_388_608)
        if self.scsihw not in {s.value for s in ScsiHardware}:
            raise ValueError(f"invalid scsihw {self.scsihw!r}")
        check_slot(self.disk_slot)
        check_storage(self.disk_storage)
        if self.disk_size_gib is not None:
            check_int(self.disk_size_gib, "disk size (GiB)", minimum=1, maximum=65536)
        check_bridge(self.bridge)
        if self.net_model not in {m.value for m in NetworkModel}:
            raise ValueError(f"invalid network model {self.net_model!r}")
        for tag in self.tags:
            check_tag(tag)

    @property
    def net0(self) -> str:
        return f"{self.net_model},bridge={self.bridge}"


def definition_from_spec(spec: ProxmoxVMSpec, node: ProxmoxNodeSpec, object_name: str) -> VmDefinition:
    """Resolve a ProxmoxVM spec against its node's defaults (name ← object name, storage/bridge ← node)."""
    cloud_init = None
    if spec.cloud_init is not None:
        ci = spec.cloud_init
        ip = ci.ip_config
        ipconfig0 = (
            "ip=dhcp"
            if ip.address == "dhcp"
            else f"ip={ip.address}" + (f",gw={ip.gateway}" if ip.gateway else "")
        )
        cloud_init = CloudInitDefinition(
            storage=ci.storage or node.default_storage,
            user=ci.user,
            ssh_authorized_keys=tuple(ci.ssh_authorized_keys),
            ipconfig0=ipconfig0,
        )
    return VmDefinition(
        vmid=spec.vmid,
        name=spec.name or object_name,
        cores=spec.cores,
        sockets=spec.sockets,
        memory_mib=spec.memory_mib,
        scsihw=spec.scsi_hardware.value,
        disk_slot=spec.disk.slot,
        disk_storage=spec.disk.storage or node.default_storage,
        disk_size_gib=spec.disk.size_gib,
        bridge=spec.network.bridge or node.default_bridge,
        net_model=spec.network.model.value,
        onboot=spec.on_boot,
        protection=spec.protected,
        tags=tuple(spec.tags),
        cloud_init=cloud_init,
    )
