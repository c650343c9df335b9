"""The operator's node client plus the calls only tests and benchmarks make (the original tool's per-VM reads,
cluster reads, tag/protection/marker writes): the product's `ProxmoxClient` keeps only what the controllers use."""

from __future__ import annotations

from collections.abc import Sequence

from proxnix.adapters import proxmox_client
from proxnix.adapters.proxmox_client import RetryPolicy
from proxnix.proxmox import commands
from proxnix.proxmox.ownership import Owner, marker_description, ownership_tags
from proxnix.proxmox.pvesh import (
    ClusterGuest,
    ClusterNode,
    parse_cluster_resources,
    parse_nextid,
    parse_nodes,
)
from proxnix.proxmox.qm_list import VmListEntry, parse_qm_list
from proxnix.proxmox.qm_pending import PendingItem, parse_qm_pending
from proxnix.proxmox.qm_status import VmStatus, parse_qm_status
from proxnix.proxmox.vm_config import VmConfig, parse_vm_config

__all__ = ["ProxmoxClient", "RetryPolicy"]


class ProxmoxClient(proxmox_client.ProxmoxClient):
    """`proxnix.adapters.proxmox_client.ProxmoxClient` with the test-only reads and writes."""

    async def list_vms(self) -> list[VmListEntry]:
        """`qm list` (the original tool's listing; `inventory` is the batched replacement)."""
        return parse_qm_list((await self._read(commands.qm_list(), "qm list")).stdout)

    async def vm_config(self, vmid: int, *, current: bool = False) -> VmConfig:
        """`qm config` (pending values merged unless `current`)."""
        argv = commands.qm_config(vmid, current=current)
        return parse_vm_config(
            (await self._read(argv, "qm config")).stdout, command=" ".join(argv), vmid=vmid
        )

    async def vm_status(self, vmid: int) -> VmStatus:
        argv = commands.qm_status(vmid)
        return parse_qm_status((await self._read(argv, "qm status")).stdout, command=" ".join(argv))

    async def pending_changes(self, vmid: int) -> dict[str, PendingItem]:
        argv = commands.qm_pending(vmid)
        return parse_qm_pending((await self._read(argv, "qm pending")).stdout, command=" ".join(argv))

    async def cluster_resources(self) -> list[ClusterGuest]:
        return parse_cluster_resources(
            (await self._read(commands.cluster_resources(), "cluster resources")).stdout
        )

    async def cluster_nodes(self) -> list[ClusterNode]:
        return parse_nodes((await self._read(commands.cluster_nodes(), "nodes")).stdout)

    async def next_vmid(self) -> int:
        return parse_nextid((await self._read(commands.next_vmid(), "nextid")).stdout)

    async def set_tags(
        self, vmid: int, owner_uid: str, tags: Sequence[str], *, image_sha256: str | None = None
    ) -> None:
        """Replace the user tags; the ownership tags (`proxnix`, `nix-<hash12>`) are always kept."""
        await self.update_vm(vmid, owner_uid, {"tags": ";".join(ownership_tags(image_sha256, tags))})

    async def set_protection(self, vmid: int, owner_uid: str, protected: bool) -> None:
        await self.update_vm(vmid, owner_uid, {"protection": protected})

    async def update_marker(
        self, vmid: int, owner: Owner, image_sha256: str | None, *, extra_tags: Sequence[str] = ()
    ) -> None:
        """Rewrite the marker (after a reimage): description block and `nix-<hash12>` tag; a user's notes are kept."""

        def build(cfg: VmConfig) -> list[str]:
            description = marker_description(owner, image_sha256, keep=cfg.description)
            tags = ";".join(ownership_tags(image_sha256, extra_tags))
            return commands.set_options(
                vmid, {"description": description, "tags": tags}, digest=self._digest(cfg)
            )

        await self._mutate(f"update marker of VM {vmid}", vmid, owner.uid, build)
