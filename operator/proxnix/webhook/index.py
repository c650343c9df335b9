"""The sidecar's caches: GitRepos indexed by repository key (`GitRepoIndex`) and webhook secrets (`SecretCache`).

Listing GitRepos and reading Secrets on every request would put the API server on the request path at thousands of
requests per second; these caches take it off, within stated bounds:

- `GitRepoIndex` is filled by a full list, repeated every `resync_interval` (default 30 s) by `run()`. A lookup that
  finds no acceptable GitRepo (a miss: unknown URL, or no GitRepo following the pushed ref) waits for a list that
  started at most `miss_interval` (default 1 s) before the request, starting one if needed. So a GitRepo created (or
  re-pointed at another url or ref) more than `miss_interval` before a push is always found, and misses cost at most
  one list per `miss_interval` however many arrive. Concurrent lookups share one list in flight. Deletions show up at
  the next resync, or at once when patching a stale entry gets 404 (which also schedules a list).
- `SecretCache` keeps each Secret's value (or its absence) for `ttl` (default 10 s); a request whose signature does
  not verify may ask for values fetched no earlier than `min_refresh` (default 1 s) ago, so a rotated secret works
  within `min_refresh`, and a flood of bad signatures costs at most one read per Secret per `min_refresh`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from proxnix.webhook.store import SECRET_DATA_KEY, GitRepoEntry, GitRepoStore, entry_from_object

log = logging.getLogger(__name__)

ListHook = Callable[[str, bool, int], None]
"""Called after each list with (reason, succeeded, number of GitRepos)."""


class GitRepoIndex:
    """GitRepos by repository key and by namespace/name, kept fresh by listing (see the module docstring)."""

    def __init__(
        self,
        store: GitRepoStore,
        namespace: str | None,
        *,
        resync_interval: float = 30.0,
        miss_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_list: ListHook | None = None,
    ) -> None:
        self._store = store
        self._namespace = namespace
        self.resync_interval = resync_interval
        self.miss_interval = miss_interval
        self._clock = clock
        self._on_list = on_list
        self._by_key: dict[str, tuple[GitRepoEntry, ...]] = {}
        self._by_id: dict[tuple[str, str], GitRepoEntry] = {}
        self._listed_at = float("-inf")  # start time of the last successful list
        self._inflight: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()

    @property
    def synced(self) -> bool:
        """True once one list has succeeded."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Return once one list has succeeded."""
        await self._synced.wait()

    def __len__(self) -> int:
        return len(self._by_id)

    def entries(self) -> list[GitRepoEntry]:
        """Every indexed GitRepo."""
        return list(self._by_id.values())

    async def _list(self, reason: str) -> None:
        started = self._clock()
        try:
            objects = await self._store.list_gitrepos(self._namespace)
        except Exception:
            if self._on_list:
                self._on_list(reason, False, len(self._by_id))
            raise
        self._install(entry for entry in map(entry_from_object, objects) if entry is not None)
        self._listed_at = max(self._listed_at, started)
        self._synced.set()
        if self._on_list:
            self._on_list(reason, True, len(self._by_id))

    def _install(self, entries: Iterable[GitRepoEntry]) -> None:
        by_key: dict[str, list[GitRepoEntry]] = {}
        by_id: dict[tuple[str, str], GitRepoEntry] = {}
        for entry in entries:
            by_id[(entry.namespace, entry.name)] = entry
            if entry.url_key is not None:
                by_key.setdefault(entry.url_key, []).append(entry)
        self._by_key = {key: tuple(group) for key, group in by_key.items()}
        self._by_id = by_id

    async def ensure_listed_since(self, since: float, reason: str) -> None:
        """Return once a list that started at or after `since` (clock time) has succeeded; raise if one fails."""
        while self._listed_at < since:
            task = self._inflight
            if task is None:
                task = asyncio.create_task(self._list(reason))
                self._inflight = task
                task.add_done_callback(self._list_done)
            await asyncio.shield(task)

    def _list_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled() and task.exception() is not None:
            log.debug("GitRepo list failed", exc_info=task.exception())

    async def refresh_after_miss(self) -> None:
        """Make sure the index is no older than `miss_interval` (at most one list per `miss_interval`)."""
        await self.ensure_listed_since(self._clock() - self.miss_interval, "miss")

    def schedule_refresh(self) -> None:
        """Start a list in the background (after a stale entry was seen), unless one is in flight or recent."""
        if self._inflight is None and self._listed_at < self._clock() - self.miss_interval:
            task = asyncio.create_task(self._list("stale"))
            self._inflight = task
            task.add_done_callback(self._list_done)

    def _lookup(self, keys: Iterable[str], accept: Callable[[GitRepoEntry], bool]) -> list[GitRepoEntry]:
        found: dict[str, GitRepoEntry] = {}
        for key in keys:
            for entry in self._by_key.get(key, ()):
                if accept(entry):
                    found[entry.id] = entry
        return sorted(found.values(), key=lambda e: (e.namespace, e.name))

    async def candidates(
        self, keys: frozenset[str], accept: Callable[[GitRepoEntry], bool]
    ) -> list[GitRepoEntry]:
        """GitRepos whose url has one of `keys` and that `accept` admits; a miss re-lists (rate-limited) first."""
        found = self._lookup(keys, accept)
        if found:
            return found
        await self.refresh_after_miss()
        return self._lookup(keys, accept)

    async def named(self, namespace: str, name: str) -> GitRepoEntry | None:
        """The GitRepo `namespace/name`; a miss re-lists (rate-limited) first."""
        entry = self._by_id.get((namespace, name))
        if entry is not None:
            return entry
        await self.refresh_after_miss()
        return self._by_id.get((namespace, name))

    async def run(self) -> None:
        """List now and every `resync_interval`; after a failure retry sooner (backoff up to the interval)."""
        backoff = 0.5
        while True:
            try:
                await self.ensure_listed_since(self._clock(), "resync")
                backoff = 0.5
                delay = self.resync_interval
            except Exception as exc:
                log.warning("cannot list GitRepos: %s", exc)
                delay = min(backoff, self.resync_interval)
                backoff *= 2
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Cancel a list in flight."""
        task = self._inflight
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class SecretCache:
    """Webhook secret values (and their absence) by Secret, for `ttl` seconds (see the module docstring)."""

    def __init__(
        self,
        store: GitRepoStore,
        *,
        ttl: float = 10.0,
        min_refresh: float = 1.0,
        key: str = SECRET_DATA_KEY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._key = key
        self._clock = clock
        self._values: dict[tuple[str, str], tuple[bytes | None, float]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[bytes | None]] = {}

    async def _read(self, ident: tuple[str, str]) -> bytes | None:
        started = self._clock()
        value = await self._store.read_secret_key(ident[0], ident[1], self._key)
        self._values[ident] = (value, started)
        return value

    async def get(self, namespace: str, name: str, *, fresh: bool = False) -> bytes | None:
        """The Secret's value; `fresh` asks for one read no earlier than `min_refresh` ago (after a failed check)."""
        ident = (namespace, name)
        now = self._clock()
        cached = self._values.get(ident)
        oldest = now - (self.min_refresh if fresh else self.ttl)
        if cached is not None and cached[1] >= oldest:
            return cached[0]
        task = self._inflight.get(ident)
        if task is None:
            task = asyncio.create_task(self._read(ident))
            self._inflight[ident] = task
            task.add_done_callback(lambda done: self._forget(ident, done))
        return await asyncio.shield(task)

    def _forget(self, ident: tuple[str, str], task: asyncio.Task[bytes | None]) -> None:
        if self._inflight.get(ident) is task:
            del self._inflight[ident]
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not reported as "never retrieved"

    def retain(self, idents: Iterable[tuple[str, str]]) -> None:
        """Drop cached values of Secrets no GitRepo refers to any more."""
        keep = set(idents)
        for ident in list(self._values):
            if ident not in keep:
                del self._values[ident]
