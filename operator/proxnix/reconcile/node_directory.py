"""The node directory: the operator's live view of its Proxmox nodes (probing them is `node_probe`'s job): one SSH pool and node client per ProxmoxNode, and a per-node
inventory cache so that a resync of N VMs costs one remote call per node, not one per VM.

A `NodeHandle` is (re)built from the ProxmoxNode spec and its Secret; the pool is replaced only when the target,
the credentials or the pool settings change (a Secret rotation). The inventory cache is single-flight (concurrent
readers share one remote call) and is dropped after every change the operator makes on the node, so a decision to
act is never taken on a view older than the last action.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from proxnix.adapters.image_upload import UploadResult, upload_image
from proxnix.adapters.local_images import LocalImage
from proxnix.adapters.proxmox_client import ProxmoxClient
from proxnix.adapters.ssh_pool import PoolSettings, SshCredentials, SshPool, SshPoolRegistry, SshTarget
from proxnix.api.clock import now_rfc3339
from proxnix.api.proxmoxnode import HostKeyPolicy, ProxmoxNodeSpec
from proxnix.proxmox.dialect import QmDialect
from proxnix.proxmox.inventory import NodeInventory


def node_key(namespace: str, name: str) -> str:
    """The registry key of a ProxmoxNode object."""
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class Seen:
    """An inventory and when it was fetched (monotonic, for ages; wall clock, for status)."""

    inventory: NodeInventory
    fetched_at: float
    fetched_wall: str

    @property
    def age(self) -> float:
        return time.monotonic() - self.fetched_at


@dataclass
class NodeHandle:
    """One ProxmoxNode as the operator can use it now."""

    key: str
    spec: ProxmoxNodeSpec
    node_name: str
    pool: SshPool
    client: ProxmoxClient
    pve_version: str = ""
    _cached: Seen | None = None
    _inflight: asyncio.Task[Seen] | None = None
    _inflight_epoch: int = -1
    _epoch: int = 0
    _uploads: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def observe(self, max_age: float = 0.0) -> Seen:
        """The node's inventory, no older than `max_age` seconds (0: a fetch started after the last change made on
        the node, shared with concurrent callers)."""
        cached = self._cached
        if cached is not None and max_age > 0 and cached.age <= max_age:
            return cached
        if self._inflight is None or self._inflight.done() or self._inflight_epoch != self._epoch:
            self._inflight = asyncio.create_task(self._fetch(self._epoch))
            self._inflight_epoch = self._epoch
        return await asyncio.shield(self._inflight)

    async def inventory(self, max_age: float = 0.0) -> NodeInventory:
        return (await self.observe(max_age)).inventory

    @property
    def connected_before(self) -> bool:
        """Whether this handle's pool has run a command already (a new pool: the node's version is read again)."""
        return self.pool.stats.commands > 0

    @property
    def trusted_fingerprint(self) -> str:
        """The host key fingerprint accepted by trust-on-first-use, to record in status (empty otherwise)."""
        return self.pool.host_key_fingerprint if self.pool.trusted_on_first_use else ""

    async def read_version(self) -> str:
        """The node's Proxmox VE version (`pvesh get /version`)."""
        return await self.client.pve_version()

    def learn_version(self, version: str) -> None:
        """Speak the `qm` dialect of `version` to this node from now on."""
        if version != self.pve_version:
            self.pve_version = version
            self.client.dialect = QmDialect.for_version(version)

    async def _fetch(self, epoch: int) -> Seen:
        started = time.monotonic()
        wall = now_rfc3339()
        inventory = await self.client.inventory()
        seen = Seen(inventory, started, wall)
        if epoch == self._epoch:  # no change was made on the node while this call ran
            self._cached = seen
        return seen

    def invalidate(self) -> None:
        """Forget the cached inventory (call after changing anything on the node)."""
        self._epoch += 1
        self._cached = None

    async def upload(self, image: LocalImage) -> UploadResult:
        """Put `image` in the node's image cache (once: parallel creates from one image share the upload)."""
        async with self._uploads.setdefault(image.sha256, asyncio.Lock()):
            return await upload_image(
                self.pool, image.path, self.spec.image_cache_dir, expected_sha256=image.sha256, hashed=True
            )


class NodeDirectory:
    """Every configured node, by `namespace/name`. Lives in the kopf memo; `close()` on shutdown."""

    def __init__(self, *, command_timeout_s: float = 120.0) -> None:
        self._pools = SshPoolRegistry()
        self._handles: dict[str, NodeHandle] = {}
        self._command_timeout_s = command_timeout_s

    def get(self, namespace: str, name: str) -> NodeHandle | None:
        return self._handles.get(node_key(namespace, name))

    def by_node_name(self, namespace: str, node_name: str) -> NodeHandle | None:
        """The handle of the ProxmoxNode (in `namespace`) whose Proxmox node name is `node_name`."""
        return next(
            (
                h
                for h in self._handles.values()
                if h.key.startswith(f"{namespace}/") and h.node_name == node_name
            ),
            None,
        )

    def handles(self) -> list[NodeHandle]:
        """Every configured node (a snapshot; for metrics)."""
        return list(self._handles.values())

    async def configure(
        self,
        namespace: str,
        name: str,
        spec: ProxmoxNodeSpec,
        secret: Mapping[str, bytes],
        *,
        pinned_fingerprint: str = "",
    ) -> NodeHandle:
        """Build or refresh the handle from the spec and the Secret's data (a new pool only if something changed)."""
        key = node_key(namespace, name)
        node_name = spec.node_name or name
        credentials = SshCredentials.from_secret(
            secret,
            trust_on_first_use=spec.host_key_policy == HostKeyPolicy.TRUST_ON_FIRST_USE,
            pinned_fingerprint=pinned_fingerprint,
        )
        target = SshTarget(host=spec.host, port=spec.port, user=spec.user, node=node_name)
        settings = PoolSettings(max_sessions=spec.max_sessions, command_timeout=self._command_timeout_s)
        pool = await self._pools.get(key, target, credentials, settings)
        current = self._handles.get(key)
        if current is not None and current.pool is pool and current.spec == spec:
            return current
        handle = NodeHandle(
            key=key,
            spec=spec,
            node_name=node_name,
            pool=pool,
            client=ProxmoxClient(pool, node_name, command_timeout_s=self._command_timeout_s),
        )
        if current is not None:
            handle.client.dialect = current.client.dialect
            handle.pve_version = current.pve_version
            handle._uploads = current._uploads
        self._handles[key] = handle
        return handle

    async def remove(self, namespace: str, name: str) -> None:
        key = node_key(namespace, name)
        self._handles.pop(key, None)
        await self._pools.discard(key)

    async def close(self) -> None:
        self._handles.clear()
        await self._pools.close()
