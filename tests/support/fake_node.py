"""In-memory fakes of the VM reconcile's I/O (`proxnix.reconcile.vm.ports`) and of the node probe's
(`proxnix.reconcile.node_probe`): a Proxmox node as a dict of VM configs, its client, the node directory, the local
images, the Secrets. No server, no SSH: reconcile steps and safety rules are unit-tested against these.

The fake client records every call it is asked to make (`FakeNode.calls`) before it applies the same ownership
guard as the real client (`require_owned`, protection before destroy), so a test can assert that the reconcile
never even tried to touch what is not its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from proxnix.adapters.image_upload import UploadResult
from proxnix.adapters.local_images import LocalImage, LocalImageError
from proxnix.adapters.node_liveness import Liveness
from proxnix.adapters.proxmox_client import ImportMethod
from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.proxmox import commands
from proxnix.proxmox.commands import ConfigValue
from proxnix.proxmox.definition import VmDefinition
from proxnix.proxmox.dialect import QmDialect
from proxnix.proxmox.disk_import import ImportedDisk
from proxnix.proxmox.errors import (
    AgentNotRunning,
    NodeUnreachable,
    PermanentError,
    ProtectionEnabled,
    ProxmoxError,
    VmNotFound,
)
from proxnix.proxmox.guest_agent import GuestAddress, GuestInterface
from proxnix.proxmox.inventory import NodeInventory, VmObservation
from proxnix.proxmox.ownership import Owner, config_ownership, marker_description, require_owned
from proxnix.proxmox.pvesh import ClusterGuest
from proxnix.proxmox.vm_config import VmConfig
from proxnix.reconcile.node_directory import Seen, unreachable
from proxnix.reconcile.outcome import Outcome, RetryPolicy

T = TypeVar("T")

GIB = 1024**3
WALL = "2026-12-01T00:00:00Z"


def _options(argv: Sequence[str]) -> dict[str, str]:
    """The `--key value` pairs of a qm argv."""
    pairs: dict[str, str] = {}
    items = list(argv)
    for i, item in enumerate(items):
        if item.startswith("--") and i + 1 < len(items):
            pairs[item[2:]] = items[i + 1]
    return pairs


@dataclass
class FakeVm:
    """One VM's config (main section) and power state."""

    values: dict[str, str]
    description: str = ""
    power: str = "stopped"

    def config(self, vmid: int) -> VmConfig:
        return VmConfig(vmid=vmid, values=dict(self.values), description=self.description, digest=f"d{vmid}")


def foreign_vm(name: str = "legacy", *, power: str = "running") -> FakeVm:
    """A VM proxnix did not create (no marker)."""
    return FakeVm({"name": name, "memory": "1024", "scsi0": "local-lvm:vm-disk-0,size=4G"}, power=power)


def owned_vm(owner: Owner, image_sha256: str, *, power: str = "running", protection: bool = False) -> FakeVm:
    """A VM proxnix created for `owner` from `image_sha256` (1 core, 512 MiB, the defaults of a minimal spec)."""
    values = {
        "name": owner.name,
        "memory": "512",
        "cores": "1",
        "sockets": "1",
        "scsihw": "virtio-scsi-pci",
        "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
        "onboot": "1",
        "agent": "1",
        "serial0": "socket",
        "scsi0": "local-lvm:vm-disk-0,size=4G",
        "boot": "order=scsi0",
        "tags": f"nix-{image_sha256[:12]};proxnix",
    }
    if protection:
        values["protection"] = "1"
    return FakeVm(values, marker_description(owner, image_sha256), power)


class FakeClient:
    """The node client's VM operations over `FakeNode.vms` (see `proxnix.reconcile.vm.ports.VmClient`)."""

    def __init__(self, node: FakeNode) -> None:
        self._node = node
        self.dialect = QmDialect()

    def _owned(self, vmid: int, uid: str) -> FakeVm:
        vm = self._node.vms.get(vmid)
        if vm is None:
            raise VmNotFound(f"VM {vmid} does not exist", vmid=vmid, node=self._node.node_name)
        require_owned(vm.config(vmid), uid, vmid=vmid, node=self._node.node_name)
        return vm

    def _call(self, what: str, vmid: int) -> None:
        self._node.calls.append((what, vmid))
        failure = self._node.fail_on.get(what)
        if failure is not None:
            raise failure

    async def _hang(self, what: str) -> None:
        """A call the node never answers (it froze): waits until cancelled."""
        if what in self._node.hang_on:
            self._node.hanging.set()
            await asyncio.Event().wait()

    async def create_vm(
        self,
        definition: VmDefinition,
        owner: Owner,
        *,
        image_sha256: str | None = None,
        import_from: str | None = None,
    ) -> VmConfig:
        self._call("create", definition.vmid)
        argv = commands.create_vm(definition, owner, image_sha256=image_sha256, import_from=import_from)
        values = _options(argv)
        description = values.pop("description", "")
        slot = definition.disk_slot
        if import_from is not None:
            gib = self._node.uploaded.get(import_from, 4 * GIB) // GIB
            values[slot] = f"{definition.disk_storage}:vm-{definition.vmid}-disk-0,size={gib}G"
        self._node.vms[definition.vmid] = FakeVm(values, description)
        return self._node.vms[definition.vmid].config(definition.vmid)

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
    ) -> ImportedDisk:
        self._call("import", vmid)
        vm = self._owned(vmid, owner_uid)
        gib = self._node.uploaded.get(source, 4 * GIB) // GIB
        vm.values[slot] = f"{storage}:vm-{vmid}-disk-0,size={gib}G"
        return ImportedDisk(slot=slot, volume=f"{storage}:vm-{vmid}-disk-0")

    async def update_vm(
        self, vmid: int, owner_uid: str, options: Mapping[str, ConfigValue], *, delete: Sequence[str] = ()
    ) -> None:
        self._call("update", vmid)
        vm = self._owned(vmid, owner_uid)
        values = _options(commands.set_options(vmid, options, delete=delete))
        vm.description = values.pop("description", vm.description)
        values.pop("delete", None)
        vm.values.update(values)
        for key in delete:
            vm.values.pop(key, None)

    async def resize_disk(self, vmid: int, owner_uid: str, slot: str, size_gib: int) -> bool:
        self._call("resize", vmid)
        vm = self._owned(vmid, owner_uid)
        volume = vm.values[slot].split(",", 1)[0]
        vm.values[slot] = f"{volume},size={size_gib}G"
        return True

    async def start_vm(self, vmid: int, owner_uid: str) -> None:
        self._call("start", vmid)
        self._owned(vmid, owner_uid).power = "running"

    async def stop_vm(self, vmid: int, owner_uid: str) -> None:
        self._call("stop", vmid)
        self._owned(vmid, owner_uid).power = "stopped"

    async def shutdown_vm(
        self, vmid: int, owner_uid: str, *, timeout_s: int = 60, force_stop: bool = False
    ) -> None:
        self._call("shutdown", vmid)
        self._owned(vmid, owner_uid).power = "stopped"

    async def reboot_vm(self, vmid: int, owner_uid: str, *, timeout_s: int | None = None) -> None:
        self._call("reboot", vmid)
        self._owned(vmid, owner_uid).power = "running"

    async def destroy_vm(self, vmid: int, owner_uid: str, *, stop_first: bool = True) -> bool:
        self._call("destroy", vmid)
        try:
            vm = self._owned(vmid, owner_uid)
        except VmNotFound:
            return False
        if vm.values.get("protection") == "1":
            raise ProtectionEnabled(f"VM {vmid} has protection enabled", node=self._node.node_name)
        del self._node.vms[vmid]
        return True

    async def guest_interfaces(self, vmid: int) -> list[GuestInterface]:
        self._call("agent", vmid)
        await self._hang("agent")
        if not self._node.agent_addresses:
            raise AgentNotRunning("QEMU guest agent is not running", node=self._node.node_name)
        addresses = tuple(
            GuestAddress(a, "ipv6" if ":" in a else "ipv4", None) for a in self._node.agent_addresses
        )
        return [GuestInterface("eth0", "bc:24:11:00:00:01", addresses)]


@dataclass
class FakeNode:
    """A Proxmox node in memory (see `proxnix.reconcile.vm.ports.VmNode` and `node_probe.ProbedNode`)."""

    node_name: str = "pve1"
    spec: ProxmoxNodeSpec = field(
        default_factory=lambda: ProxmoxNodeSpec.model_validate(
            {"host": "127.0.0.1", "credentialsSecretRef": {"name": "s"}}
        )
    )
    vms: dict[int, FakeVm] = field(default_factory=dict)
    elsewhere: dict[int, str] = field(default_factory=dict)  # VMIDs held on other nodes of the cluster
    reachable: bool = True
    agent_addresses: list[str] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)
    fail_on: dict[str, ProxmoxError] = field(default_factory=dict)  # what → the error that call raises
    uploaded: dict[str, int] = field(default_factory=dict)  # remote path → virtual size
    invalidations: int = 0
    cached_age_s: float = 0.0  # how old a cached view (max_age > 0) is
    pve_version: str = ""
    version: str = "8.3.0"
    connected_before: bool = False
    trusted_fingerprint: str = ""
    hang_on: set[str] = field(default_factory=set)  # calls that never answer (a frozen node): "agent"
    hanging: asyncio.Event = field(default_factory=asyncio.Event)  # set when a call started hanging
    liveness: Liveness | None = None  # the liveness probe's verdict (None: no probe)
    _down: asyncio.Event = field(default_factory=asyncio.Event)

    def go_down(
        self,
        since: str,
        reason: str = "no answer to 2 pings within 5 s",
        permanent: type[PermanentError] | None = None,
    ) -> None:
        """The liveness probe finds the node down (work in progress on it is abandoned); `permanent`: the error
        class of a cause that cannot pass by itself (a host key mismatch)."""
        self.liveness = Liveness(False, since, reason, permanent)
        self._down.set()

    async def unless_down(self, work: Awaitable[T]) -> T:
        """As `NodeHandle.unless_down`: `work` is cancelled when the node goes down first (`go_down`); without it
        (`reachable` False) each call raises by itself."""
        task = asyncio.ensure_future(work)
        down = asyncio.ensure_future(self._down.wait())
        try:
            done, _ = await asyncio.wait({task, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            down.cancel()
        if task in done:
            return task.result()
        task.cancel()
        assert self.liveness is not None
        raise unreachable(self.node_name, self.liveness)

    def __post_init__(self) -> None:
        self._client = FakeClient(self)

    @property
    def client(self) -> FakeClient:
        return self._client

    def inventory_now(self) -> NodeInventory:
        vms = {
            vmid: VmObservation(
                vmid,
                self.node_name,
                vm.config(vmid),
                vm.power,
                "pid",
                ownership=config_ownership(vm.config(vmid)),
            )
            for vmid, vm in self.vms.items()
        }
        cluster = {
            vmid: ClusterGuest(vmid=vmid, node=node, type="qemu", status="running", name=f"vm{vmid}")
            for vmid, node in self.elsewhere.items()
        }
        return NodeInventory(node=self.node_name, vms=vms, cluster=cluster)

    async def observe(self, max_age: float = 0.0) -> Seen:
        self.calls.append(("observe", 0))
        if self.liveness is not None and self.liveness.alive is False:
            raise unreachable(self.node_name, self.liveness)
        if not self.reachable:
            raise NodeUnreachable(
                f"ssh: connect to host {self.spec.host}: Connection refused", node=self.node_name
            )
        if "observe" in self.fail_on:
            raise self.fail_on["observe"]
        age = self.cached_age_s if max_age > 0 else 0.0
        return Seen(self.inventory_now(), time.monotonic() - age, WALL)

    async def inventory(self, max_age: float = 0.0) -> NodeInventory:
        return (await self.observe(max_age)).inventory

    def invalidate(self) -> None:
        self.invalidations += 1

    async def upload(self, image: LocalImage) -> UploadResult:
        self._client._call("upload", 0)
        path = f"{self.spec.image_cache_dir}/{image.sha256}.{image.format}"
        self.uploaded[path] = image.virtual_size_bytes
        return UploadResult(path, image.sha256, image.size_bytes, image.format, False, 0.1, None)

    async def read_version(self) -> str:
        self.calls.append(("version", 0))
        return self.version

    def learn_version(self, version: str) -> None:
        self.pve_version = version
        self._client.dialect = QmDialect.for_version(version)


@dataclass
class FakeNodes:
    """The node directory (see `proxnix.reconcile.vm.ports.VmNodes` and `node_probe.NodeConfigurator`)."""

    nodes: dict[str, FakeNode] = field(default_factory=dict)  # by ProxmoxNode name
    configured: list[tuple[str, str]] = field(default_factory=list)

    def get(self, namespace: str, name: str) -> FakeNode | None:
        return self.nodes.get(name)

    def by_node_name(self, namespace: str, node_name: str) -> FakeNode | None:
        return next((n for n in self.nodes.values() if n.node_name == node_name), None)

    async def configure(
        self,
        namespace: str,
        name: str,
        spec: ProxmoxNodeSpec,
        secret: Mapping[str, bytes],
        *,
        pinned_fingerprint: str = "",
    ) -> FakeNode:
        self.configured.append((namespace, name))
        node = self.nodes.setdefault(name, FakeNode(node_name=spec.node_name or name, spec=spec))
        if not node.reachable:
            raise NodeUnreachable(
                f"ssh: connect to host {spec.host}: Connection refused", node=node.node_name
            )
        return node


@dataclass
class FakeImages:
    """Local images by source (see `proxnix.reconcile.vm.ports.Images`); a missing source is not there yet."""

    images: dict[str, LocalImage] = field(default_factory=dict)
    broken: dict[str, LocalImageError] = field(default_factory=dict)

    def add(self, source: str, sha256: str, *, virtual_gib: int = 4) -> LocalImage:
        image = LocalImage(Path(source), sha256, "qcow2", GIB // 2, virtual_gib * GIB)
        self.images[source] = image
        return image

    async def resolve(self, source: str, expected_sha256: str | None) -> LocalImage:
        if source in self.broken:
            raise self.broken[source]
        image = self.images.get(source)
        if image is None:
            raise LocalImageError(f"image {source} does not exist on the operator's machine", permanent=False)
        return image


@dataclass
class FakeSecrets:
    """Secrets by name (see `proxnix.reconcile.node_probe.Secrets`)."""

    secrets: dict[str, dict[str, bytes]] = field(default_factory=dict)

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.secrets.get(name)


def retried_with(outcome: Outcome) -> RetryPolicy | None:
    """The retry policy an outcome asks for (None: no retry)."""
    return outcome.retry.policy if outcome.retry is not None else None
