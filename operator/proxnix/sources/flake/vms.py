"""The `proxnix` flake output: `{"vms": {key: {...}}}` in the format users already have, plus snake_case extensions.

The users' format (kept compatible with the original tool): name, vm_id, image_type, cores, sockets, memory_mb,
disk_gb, storage_location, cloud_init ("None" or {"StorageReference": storage}), protected, and optionally
network_bridge, scsi_hw, disk_slot. Extensions say everything else a ProxmoxVM can: node, run_strategy, tags,
deletion_policy, on_boot, reboot_for_pending_changes, net_model, cloud_init_user, ssh_authorized_keys, ip_config.
Unknown keys are refused (a typo must not be silently ignored). Errors name the VM key and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from proxnix.api.meta import K8sName
from proxnix.api.proxmoxvm import (
    DISK_SLOT_PATTERN,
    DeletionPolicy,
    IpConfig,
    NetworkModel,
    RunStrategy,
    ScsiHardware,
    SshPublicKey,
)
from proxnix.api.scalars import BridgeName, DnsName, StorageId, Tag, UserName, VmId

# A nixosConfigurations attribute name the operator will put into a nix expression and an installable.
IMAGE_TYPE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
ImageType = Annotated[str, StringConstraints(pattern=IMAGE_TYPE_PATTERN, min_length=1, max_length=128)]
# A key of the `vms` attribute set.
VM_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


class FlakeFormatError(Exception):
    """The `proxnix` output is not in the format; `problems` are one line each, naming the VM key and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class FlakeVM(BaseModel):
    """One VM of the flake, as written in `proxnix.vms.<key>`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The users' format.
    name: DnsName
    vm_id: VmId
    image_type: ImageType
    cores: int = Field(ge=1, le=512)
    sockets: int = Field(ge=1, le=16)
    memory_mb: int = Field(ge=16, le=8_388_608)
    disk_gb: int = Field(ge=1, le=65536)
    storage_location: StorageId
    cloud_init: StorageId | None = Field(
        description='`"None"`, or `{ StorageReference = "<storage>"; }`: the storage of a cloud-init drive.'
    )
    protected: bool
    network_bridge: BridgeName | None = None
    scsi_hw: ScsiHardware = ScsiHardware.VIRTIO_SCSI_PCI
    disk_slot: str = Field(default="scsi0", pattern=DISK_SLOT_PATTERN)
    # proxnix extensions.
    node: K8sName | None = None
    run_strategy: RunStrategy = RunStrategy.ALWAYS
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    on_boot: bool = True
    reboot_for_pending_changes: bool = False
    net_model: NetworkModel = NetworkModel.VIRTIO
    cloud_init_user: UserName | None = None
    ssh_authorized_keys: list[SshPublicKey] = Field(default_factory=list, max_length=64)
    ip_config: IpConfig | None = None

    @field_validator("cloud_init", mode="before")
    @classmethod
    def _users_cloud_init(cls, value: Any) -> Any:
        if value == "None":
            return None
        if isinstance(value, Mapping) and set(value) == {"StorageReference"}:
            return value["StorageReference"]
        raise ValueError('must be "None" or { StorageReference = "<storage>"; }')

    @model_validator(mode="after")
    def _cloud_init_settings_need_a_drive(self) -> FlakeVM:
        if self.cloud_init is None:
            given = [
                field
                for field in ("cloud_init_user", "ssh_authorized_keys", "ip_config")
                if getattr(self, field)
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} need a cloud-init drive: set cloud_init = {{ StorageReference = ...; }}"
                )
        if len(set(self.tags)) != len(self.tags):
            raise ValueError("tags must be unique")
        return self

    @property
    def object_name(self) -> str:
        """The name of the ProxmoxVM rendered for this VM (Kubernetes names are lowercase)."""
        return self.name.lower()


def _problems(key: str, error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(["vms", key, *(str(part) for part in item["loc"])])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return problems


def parse_vms(output: Any) -> dict[str, FlakeVM]:
    """The VMs of a `nix eval --json <flake>#proxnix` result, by key; every problem at once in FlakeFormatError."""
    if not isinstance(output, Mapping) or not isinstance(output.get("vms"), Mapping):
        raise FlakeFormatError(['the proxnix output must be an attribute set with a "vms" attribute set'])
    extra = sorted(set(output) - {"vms"})
    problems = [f"proxnix.{name}: unknown attribute (only vms is read)" for name in extra]
    vms: dict[str, FlakeVM] = {}
    for key, value in output["vms"].items():
        if not isinstance(key, str) or not _valid_key(key):
            problems.append(f"vms.{key}: a VM key must match {VM_KEY_PATTERN}")
            continue
        if not isinstance(value, Mapping):
            problems.append(f"vms.{key}: must be an attribute set, not {type(value).__name__}")
            continue
        try:
            vms[key] = FlakeVM.model_validate(value)
        except ValidationError as exc:
            problems.extend(_problems(key, exc))
    if problems:
        raise FlakeFormatError(problems)
    return vms


def parse_vms_json(text: str | bytes) -> dict[str, FlakeVM]:
    """`parse_vms` of the raw JSON nix printed."""
    try:
        output = json.loads(text)
    except ValueError as exc:
        raise FlakeFormatError([f"nix eval printed no valid JSON: {exc}"]) from None
    return parse_vms(output)


def _valid_key(key: str) -> bool:
    return re.fullmatch(VM_KEY_PATTERN, key) is not None
