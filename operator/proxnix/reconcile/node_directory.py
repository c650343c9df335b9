"""The node directory: the operator's live view of its Proxmox nodes (probing them is `node_probe`'s job): one SSH pool and node client per ProxmoxNode, and a per-node
inventory cache so that a resync of N VMs costs one remote call per node, not one per VM.

A `NodeHandle` is (re)built from the ProxmoxNode spec and its Secret; the pool is replaced only when the target,
the credentials or the pool settings change (a Secret rotation). The inventory cache is single-flight (concurrent
readers share one remote call) and is dropped after every change the operator makes on the node, so a decision to
act is never taken on a view older than the last action.

Liveness (harden, issue 10): each handle has a `NodeLiveness` pinging the node on a connection of its own every few
seconds. While it says the node is down, `observe` fails at once with NodeUnreachable (never a cached view), and an
inventory call in flight is abandoned as soon as the node goes down (its VMs turn Unknown in seconds, not after the
120 s command timeout).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from proxnix.adapters.image_upload import UploadResult, upload_image
from proxnix.adapters.local_images import LocalImage
from proxnix.adapters.node_liveness import Liveness, LivenessSettings, NodeLiveness
from proxnix.adapters.proxmox_client import ProxmoxClient
from proxnix.adapters.ssh_pool import PoolSettings, SshCredentials, SshPool, SshPoolRegistry, SshTarget
from proxnix.api.clock import now_rfc3339
from proxnix.api.proxmoxnode import HostKeyPolicy, ProxmoxNodeSpec
from proxnix.proxmox.dialect import QmDialect
from proxnix.proxmox.errors import NodeUnreachable, ProxmoxError
from proxnix.proxmox.inventory import NodeInventory

DEFAULT_LIVENESS = LivenessSettings()
T = TypeVar("T")


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
    liveness: NodeLiveness | None = None
    _cached: Seen | None = None
    _inflight: asyncio.Task[Seen] | None = None
    _inflight_epoch: int = -1
    _epoch: int = 0
    _uploads: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def observe(self, max_age: float = 0.0) -> Seen:
        """The node's inventory, no older than `max_age` seconds (0: a fetch started after the last change made on
        the node, shared with concurrent callers). NodeUnreachable at once when the node is not answering."""
        self.require_alive()
        cached = self._cached
        if cached is not None and max_age > 0 and cached.age <= max_age:
            return cached
        if self._inflight is None or self._inflight.done() or self._inflight_epoch != self._epoch:
            self._inflight = asyncio.create_task(self._fetch(self._epoch))
            self._inflight_epoch = self._epoch
        return await self._race(self._inflight, cancel=False)

    def alive(self) -> Liveness | None:
        """The liveness verdict (None without a liveness probe)."""
        return self.liveness.state() if self.liveness is not None else None

    def require_alive(self) -> None:
        state = self.alive()
        if state is not None and state.alive is False:
            raise unreachable(self.node_name, state)

    async def unless_down(self, work: Awaitable[T]) -> T:
        """Run `work`; if the node goes down first, cancel it and raise NodeUnreachable at once (a call hanging on
        a frozen node is not waited for; its cancellation finishes in the background)."""
        task = asyncio.ensure_future(work)
        return await self._race(task, cancel=True)

    async def _race(self, task: asyncio.Future[T], *, cancel: bool) -> T:
        """The task's result, unless the node goes down first (then the task is cancelled, or with `cancel` False
        left running for its other waiters)."""
        task.add_done_callback(_retrieve)
        if self.liveness is None:
            return await (task if cancel else asyncio.shield(task))
        down = asyncio.ensure_future(self.liveness.wait_until(False))
        racing: set[asyncio.Future[Any]] = {task, down}
        try:
            done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if cancel:
                task.cancel()
            raise
        finally:
            down.cancel()
        if task in done:
            return task.result()
        if cancel:
            task.cancel()
        raise unreachable(self.node_name, down.result())

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


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark an abandoned call's exception as seen (its callers may have gone on after the node went down)."""
    if not task.cancelled():
        task.exception()


def unreachable(node: str, state: Liveness) -> ProxmoxError:
    """The error to raise for a node found down: NodeUnreachable, or the permanent error (a host key mismatch,
    a refused key) that keeps it down, so that its condition names the cause to fix."""
    since = f" since {state.since}" if state.since else ""
    return (state.permanent or NodeUnreachable)(
        f"the node has not answered{since}: {state.reason}", node=node
    )


class NodeDirectory:
    """Every configured node, by `namespace/name`. Lives in the kopf memo; `close()` on shutdown."""

    def __init__(
        self, *, command_timeout_s: float = 120.0, liveness: LivenessSettings | None = DEFAULT_LIVENESS
    ) -> None:
        self._pools = SshPoolRegistry()
        self._handles: dict[str, NodeHandle] = {}
        self._command_timeout_s = command_timeout_s
        self._liveness_settings = liveness
        self._liveness: dict[str, NodeLiveness] = {}

    def get(self, namespace: str, name: str) -> NodeHandle | None:
        return self._handles.get(node_key(namespace, name))

    def alive(self, namespace: str, name: str) -> bool | None:
        """The liveness verdict of a ProxmoxNode (None: not configured, or not probed yet)."""
        handle = self.get(namespace, name)
        state = handle.alive() if handle is not None else None
        return state.alive if state is not None else None

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
        liveness = await self._liveness_for(key, target, credentials)
        current = self._handles.get(key)
        if current is not None and current.pool is pool and current.spec == spec:
            current.liveness = liveness
            return current
        handle = NodeHandle(
            key=key,
            spec=spec,
            node_name=node_name,
            pool=pool,
            client=ProxmoxClient(pool, node_name, command_timeout_s=self._command_timeout_s),
            liveness=liveness,
        )
        if current is not None:
            handle.client.dialect = current.client.dialect
            handle.pve_version = current.pve_version
            handle._uploads = current._uploads
        self._handles[key] = handle
        return handle

    async def _liveness_for(
        self, key: str, target: SshTarget, credentials: SshCredentials
    ) -> NodeLiveness | None:
        """The node's liveness probe on a pool of its own (restarted when the target or credentials change)."""
        s = self._liveness_settings
        if s is None:
            return None
        settings = PoolSettings(
            max_sessions=1,
            connect_timeout=s.timeout_s,
            command_timeout=s.timeout_s,
            reconnect_initial=s.retry_s,
            reconnect_max=s.interval_s,
            keepalive_interval=s.interval_s,
            keepalive_count_max=2,
        )
        current = self._liveness.get(key)
        if current is not None and current.identity == (target, credentials) and not current.pool.closed:
            return current
        if current is not None:
            await (
                current.stop()
            )  # before its pool is closed: the loop must not hold the pool's lock meanwhile
        pool = await self._pools.get(key + "#liveness", target, credentials, settings)
        probe = NodeLiveness(pool, target.node, s, identity=(target, credentials))
        probe.start()
        self._liveness[key] = probe
        return probe

    async def remove(self, namespace: str, name: str) -> None:
        key = node_key(namespace, name)
        self._handles.pop(key, None)
        probe = self._liveness.pop(key, None)
        if probe is not None:
            await probe.stop()
        await self._pools.discard(key + "#liveness")
        await self._pools.discard(key)

    async def close(self) -> None:
        self._handles.clear()
        probes, self._liveness = list(self._liveness.values()), {}
        for probe in probes:
            await probe.stop()
        await self._pools.close()
