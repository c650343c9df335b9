"""Node liveness: is the node answering at all, decided in seconds — apart from whether one command is slow.

A `NodeLiveness` pings its node (`true` over SSH) every `interval_s` on a pool of its own (one session, its own
connection), so a long upload or a slow `qm` on the command pool cannot make the node look gone, and a hung node
cannot hide behind the 120 s command timeout. A ping that does not answer within `timeout_s` fails (its connection
is dropped: a hung sshd accepts TCP connections but never answers); `failures_to_down` failures in a row make the
node down; one answer makes it up again. A state older than `stale_after_s` (the ping loop itself stuck) counts as
down too. `wait_until(False)` returns when the node goes down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from proxnix.adapters.ssh_pool import SshPool
from proxnix.api.clock import now_rfc3339
from proxnix.proxmox.errors import PermanentError, ProxmoxError

log = logging.getLogger(__name__)

# The ping: a no-op the node's shell runs; the comment names it in the node's session logs.
PING_COMMAND = "true # proxnix liveness probe"


@dataclass(frozen=True)
class LivenessSettings:
    """Times in seconds. Worst case to detect a hung node: interval + failures * (timeout + retry)."""

    interval_s: float = 5.0
    timeout_s: float = 5.0
    retry_s: float = 1.0
    failures_to_down: int = 2

    @property
    def stale_after_s(self) -> float:
        return self.interval_s + self.failures_to_down * (self.timeout_s + self.retry_s) + self.timeout_s


@dataclass(frozen=True)
class Liveness:
    """The node's liveness now: `alive` None before the first answer or failure; `since` (RFC 3339): when it
    first answered, or (down) its last answer; `reason` why it is down."""

    alive: bool | None
    since: str
    reason: str = ""
    permanent: type[PermanentError] | None = (
        None  # the error class when it cannot pass by itself (a host key)
    )


class NodeLiveness:
    """Pings one node; `start()` once, `stop()` when the node goes away."""

    def __init__(
        self, pool: SshPool, node: str, settings: LivenessSettings | None = None, *, identity: object = None
    ) -> None:
        self.pool = pool
        self.identity = (
            identity  # what the owner built it from (target, credentials), to tell when to replace it
        )
        self.node = node
        self.settings = settings or LivenessSettings()
        self._alive: bool | None = None
        self._since = now_rfc3339()
        self._reason = "not probed yet"
        self._permanent: type[PermanentError] | None = None
        self._last_ok_wall = ""
        self._last_result = time.monotonic()
        self._failures = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"liveness {self.node}")

    async def stop(self) -> None:
        """End the ping loop. The flag ends it even if a cancellation is lost (asyncio.wait_for in Python 3.11 can
        drop one when the ping finishes at the same moment)."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=self.settings.timeout_s + 1)

    def state(self) -> Liveness:
        """The current verdict; a verdict older than `stale_after_s` is 'down' (the pings themselves hang)."""
        age = time.monotonic() - self._last_result
        if self._alive and age > self.settings.stale_after_s:
            return Liveness(False, self._last_ok_wall, f"no liveness verdict for {age:.0f} s")
        return Liveness(self._alive, self._since, self._reason, self._permanent)

    async def wait_until(self, alive: bool) -> Liveness:
        """Return once the verdict is `alive` (at once if it is): False, the node went down; True, it answers."""
        while True:
            current = self.state()
            if current.alive is alive:
                return current
            self._changed.clear()
            await self._changed.wait()

    async def ping(self) -> None:
        """One ping with the deadline; records the verdict."""
        s = self.settings
        try:
            await asyncio.wait_for(self.pool.run(PING_COMMAND, timeout_s=max(1.0, s.timeout_s)), s.timeout_s)
        except TimeoutError:
            await self.pool.drop_connections()
            self._record(False, f"no answer over SSH within {s.timeout_s:g} s")
        except ProxmoxError as exc:
            self._record(False, exc.message[:300], type(exc) if isinstance(exc, PermanentError) else None)
        else:
            self._record(True, "")

    def _record(self, ok: bool, reason: str, permanent: type[PermanentError] | None = None) -> None:
        self._last_result = time.monotonic()
        self._permanent = permanent
        if ok:
            self._last_ok_wall = now_rfc3339()
            self._failures = 0
            if self._alive is not True:
                log.info("node %s answers", self.node)
                self._alive, self._since, self._reason = True, now_rfc3339(), ""
                self._changed.set()
            return
        self._failures += 1
        if self._alive is False:
            self._reason = reason
        elif self._failures >= self.settings.failures_to_down or self._alive is None:
            log.warning("node %s is not answering: %s", self.node, reason)
            self._alive, self._since, self._reason = False, self._last_ok_wall or now_rfc3339(), reason
            self._changed.set()

    async def _loop(self) -> None:
        s = self.settings
        while not self._stopped:
            await self.ping()
            healthy = self._failures == 0
            await asyncio.sleep(s.interval_s if healthy else s.retry_s)
