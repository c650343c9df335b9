"""The caches' bounds, on a fake clock: when a miss re-lists, how often, and when secrets are re-read."""

from __future__ import annotations

import asyncio

import pytest

from proxnix.webhook.index import GitRepoIndex, SecretCache
from proxnix.webhook.memory import MemoryStore
from proxnix.webhook.store import GitRepoEntry, entry_from_object


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _accept_all(_: GitRepoEntry) -> bool:
    return True


KEY = frozenset({"h/o/r"})


async def test_a_miss_relists_at_most_once_per_miss_interval() -> None:
    store, clock = MemoryStore(), Clock()
    index = GitRepoIndex(store, None, miss_interval=1.0, clock=clock)
    await index.ensure_listed_since(clock(), "resync")
    assert store.list_calls == 1
    assert await index.candidates(KEY, _accept_all) == []  # listed just now: no re-list
    assert store.list_calls == 1
    store.add_gitrepo("ns", "r", "https://h/o/r.git")
    clock.now += 0.5
    assert await index.candidates(KEY, _accept_all) == []  # within the miss interval: still not found
    assert store.list_calls == 1
    clock.now += 0.6  # created 0.6 s ago, last list 1.1 s ago: the bound says it must be found now
    found = await index.candidates(KEY, _accept_all)
    assert [e.name for e in found] == ["r"]
    assert store.list_calls == 2
    assert await index.candidates(KEY, _accept_all) == found  # a hit costs nothing
    assert store.list_calls == 2


async def test_concurrent_misses_share_one_list() -> None:
    store, clock = MemoryStore(), Clock()
    index = GitRepoIndex(store, None, miss_interval=1.0, clock=clock)
    store.add_gitrepo("ns", "r", "https://h/o/r.git")
    results = await asyncio.gather(*(index.candidates(KEY, _accept_all) for _ in range(50)))
    assert all(len(found) == 1 for found in results)
    assert store.list_calls == 1


async def test_a_ref_change_is_a_miss() -> None:
    store, clock = MemoryStore(), Clock()
    index = GitRepoIndex(store, None, miss_interval=1.0, clock=clock)
    store.add_gitrepo("ns", "r", "https://h/o/r.git", branch="main")
    await index.ensure_listed_since(clock(), "resync")
    store.add_gitrepo("ns", "r", "https://h/o/r.git", branch="dev")
    clock.now += 2

    def follows_dev(entry: GitRepoEntry) -> bool:
        return entry.followed_ref == "refs/heads/dev"

    assert [e.name for e in await index.candidates(KEY, follows_dev)] == ["r"]


async def test_failed_list_raises_and_index_stays_unsynced() -> None:
    store = MemoryStore(fail_lists=True)
    index = GitRepoIndex(store, None)
    with pytest.raises(ConnectionError):
        await index.refresh_after_miss()
    assert not index.synced


async def test_namespace_scoping() -> None:
    store, clock = MemoryStore(), Clock()
    store.add_gitrepo("a", "r", "https://h/o/r.git")
    store.add_gitrepo("b", "r", "https://h/o/r.git")
    index = GitRepoIndex(store, "a", clock=clock)
    await index.ensure_listed_since(clock(), "resync")
    assert [e.namespace for e in index.entries()] == ["a"]


async def test_resync_loop_picks_up_deletions() -> None:
    store = MemoryStore()
    store.add_gitrepo("ns", "r", "https://h/o/r.git")
    emptied = asyncio.Event()

    def on_list(reason: str, ok: bool, size: int) -> None:
        if ok and size == 0:
            emptied.set()

    index = GitRepoIndex(store, None, resync_interval=0.01, on_list=on_list)
    task = asyncio.create_task(index.run())
    try:
        await asyncio.wait_for(index.wait_synced(), 5)
        assert len(index) == 1
        del store.gitrepos[("ns", "r")]
        await asyncio.wait_for(emptied.wait(), 5)
        assert len(index) == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_secret_cache_ttl_and_fresh_reads() -> None:
    store, clock = MemoryStore(), Clock()
    store.secrets[("ns", "s", "token")] = b"one"
    cache = SecretCache(store, ttl=10.0, min_refresh=1.0, clock=clock)
    assert await cache.get("ns", "s") == b"one"
    store.secrets[("ns", "s", "token")] = b"two"
    assert await cache.get("ns", "s") == b"one"  # cached
    assert await cache.get("ns", "s", fresh=True) == b"one"  # read less than min_refresh ago
    assert store.secret_reads == 1
    clock.now += 1.5
    assert await cache.get("ns", "s", fresh=True) == b"two"
    assert store.secret_reads == 2
    del store.secrets[("ns", "s", "token")]
    clock.now += 11
    assert await cache.get("ns", "s") is None  # absence is cached too
    assert await cache.get("ns", "s") is None
    assert store.secret_reads == 3


async def test_secret_cache_single_flight() -> None:
    store = MemoryStore()
    store.secrets[("ns", "s", "token")] = b"v"
    cache = SecretCache(store)
    assert await asyncio.gather(*(cache.get("ns", "s") for _ in range(20))) == [b"v"] * 20
    assert store.secret_reads == 1


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {"metadata": {"namespace": "n", "name": "r"}, "spec": {"url": "git@h:o/r.git"}},
            GitRepoEntry("n", "r", "h/o/r", "refs/heads/main", None),
        ),
        (
            {
                "metadata": {"namespace": "n", "name": "r"},
                "spec": {"url": "x", "ref": {"tag": "v1"}, "webhook": {"secretRef": {"name": "s"}}},
            },
            GitRepoEntry("n", "r", None, "refs/tags/v1", "s"),
        ),
        (
            {
                "metadata": {"namespace": "n", "name": "r"},
                "spec": {"url": "https://h/o/r", "ref": {"commit": "a" * 40}},
            },
            GitRepoEntry("n", "r", "h/o/r", None, None),
        ),
        ({"metadata": {"name": "r"}, "spec": {}}, None),
        ({"metadata": "junk", "spec": []}, None),
    ],
)
def test_entry_from_object(obj: dict[str, object], expected: GitRepoEntry | None) -> None:
    assert entry_from_object(obj) == expected
