"""The VM reconcile's I/O, as Protocols: the node (its inventory cache, its client's VM operations, the image
upload) and the local images. The operator passes `proxnix.reconcile.node_directory` and
`proxnix.adapters.local_images`; unit tests pass in-memory fakes (`tests.support.fake_node`), so every step and
every safety rule is tested without a server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Protocol, TypeVar

from proxnix.adapters.image_upload import UploadResult
from proxnix.adapters.local_images import LocalImage
from proxnix.adapters.proxmox_client import ImportMethod
from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.proxmox.commands import ConfigValue
from proxnix.proxmox.definition import VmDefinition
from proxnix.proxmox.dialect import QmDialect
from proxnix.proxmox.disk_import import ImportedDisk
from proxnix.proxmox.guest_agent import GuestInterface
from proxnix.proxmox.inventory import NodeInventory
from proxnix.proxmox.ownership import Owner
from proxnix.proxmox.vm_config import VmConfig
from proxnix.reconcile.node_directory import Seen

T = TypeVar("T")


class VmClient(Protocol):
    """The node client's VM operations (`proxnix.adapters.proxmox_client.ProxmoxClient`); each change re-checks
    the ownership marker on the node itself."""

    @property
    def dialect(self) -> QmDialect: ...

    async def create_vm(
        self,
        definition: VmDefinition,
        owner: Owner,
        *,
        image_sha256: str | None = None,
        import_from: str | None = None,
    ) -> VmConfig: ...

    async def import_image(
        self,
        vmid: int,
        owner_uid: str,
        source: str,
        *,
        slot: str,
        storage: str,
        method: ImportMethod = "import-from",
        boot: bool = True,
        image_format: str | None = None,
    ) -> ImportedDisk: ...

    async def update_vm(
        self, vmid: int, owner_uid: str, options: Mapping[str, ConfigValue], *, delete: Sequence[str] = ()
    ) -> None: ...

    async def resize_disk(self, vmid: int, owner_uid: str, slot: str, size_gib: int) -> bool: ...

    async def start_vm(self, vmid: int, owner_uid: str) -> None: ...

    async def stop_vm(self, vmid: int, owner_uid: str) -> None: ...

    async def shutdown_vm(
        self, vmid: int, owner_uid: str, *, timeout_s: int = 60, force_stop: bool = False
    ) -> None: ...

    async def reboot_vm(self, vmid: int, owner_uid: str, *, timeout_s: int | None = None) -> None: ...

    async def destroy_vm(self, vmid: int, owner_uid: str, *, stop_first: bool = True) -> bool: ...

    async def guest_interfaces(self, vmid: int) -> list[GuestInterface]: ...


class VmNode(Protocol):
    """One configured node (`proxnix.reconcile.node_directory.NodeHandle`)."""

    @property
    def node_name(self) -> str: ...

    @property
    def spec(self) -> ProxmoxNodeSpec: ...

    @property
    def client(self) -> VmClient: ...

    async def observe(self, max_age: float = 0.0) -> Seen: ...

    async def inventory(self, max_age: float = 0.0) -> NodeInventory: ...

    def invalidate(self) -> None: ...

    async def upload(self, image: LocalImage) -> UploadResult: ...

    async def unless_down(self, work: Awaitable[T]) -> T:
        """`work`'s result, or NodeUnreachable as soon as the node's liveness probe finds it down (`work` is
        then cancelled)."""
        ...


class VmNodes(Protocol):
    """The configured nodes (`proxnix.reconcile.node_directory.NodeDirectory`)."""

    def get(self, namespace: str, name: str) -> VmNode | None: ...

    def by_node_name(self, namespace: str, node_name: str) -> VmNode | None: ...


class Images(Protocol):
    """The operator's side of images (`proxnix.adapters.local_images.LocalImages`)."""

    async def resolve(self, source: str, expected_sha256: str | None) -> LocalImage: ...
