"""In-memory object storage with a global resourceVersion counter and a bounded change log for watches.

Stored objects are never mutated in place: every write stores a new dict, so events and responses can share them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable
from typing import Any

ResourceKey = tuple[str, str, str]  # group, version, plural
ObjectKey = tuple[str | None, str]  # namespace, name


@dataclasses.dataclass(frozen=True)
class Change:
    """One write, as watches see it: `obj` is the new state (the last state for DELETED), `old` the previous one."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: ResourceKey
    obj: dict[str, Any]
    old: dict[str, Any] | None


class ObjectStore:
    def __init__(self, history_limit: int = 10_000) -> None:
        self._objects: dict[ResourceKey, dict[ObjectKey, dict[str, Any]]] = collections.defaultdict(dict)
        self._changes: collections.deque[Change] = collections.deque(maxlen=history_limit)
        self._subscribers: set[asyncio.Queue[Change | None]] = set()
        self._rv = 0
        self._first_rv = 1  # the oldest resourceVersion a watch can still start from
        self.listeners: list[Callable[[Change], None]] = []

    @property
    def resource_version(self) -> int:
        return self._rv

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def oldest_watchable_rv(self) -> int:
        """Watches from a resourceVersion older than this get 410 Gone (the change log was trimmed)."""
        if self._changes.maxlen is not None and len(self._changes) == self._changes.maxlen:
            return self._changes[0].rv - 1
        return 0

    def get(self, resource: ResourceKey, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._objects[resource].get((namespace, name))

    def objects(self, resource: ResourceKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a resource (in one namespace, or all), sorted by namespace and name as the apiserver lists them."""
        bucket = self._objects[resource]
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def count_in_namespace(self, namespace: str) -> int:
        return sum(1 for bucket in self._objects.values() for ns, _ in bucket if ns == namespace)

    def in_namespace(self, namespace: str) -> list[tuple[ResourceKey, dict[str, Any]]]:
        return [
            (res, obj)
            for res, bucket in self._objects.items()
            for (ns, _), obj in bucket.items()
            if ns == namespace
        ]

    def drop_resource(self, resource: ResourceKey) -> list[dict[str, Any]]:
        return list(self._objects.pop(resource, {}).values())

    def write(
        self, type_: str, resource: ResourceKey, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> Change:
        """Record a write. `obj` must already carry the new resourceVersion (see `next_rv`)."""
        meta = obj["metadata"]
        key = (meta.get("namespace"), meta["name"])
        if type_ == "DELETED":
            self._objects[resource].pop(key, None)
        else:
            self._objects[resource][key] = obj
        change = Change(int(meta["resourceVersion"]), type_, resource, obj, old)
        self._changes.append(change)
        for queue in self._subscribers:
            queue.put_nowait(change)
        for listener in self.listeners:
            listener(change)
        return change

    def changes_since(self, rv: int) -> list[Change]:
        return [c for c in self._changes if c.rv > rv]

    def subscribe(self) -> asyncio.Queue[Change | None]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change | None]) -> None:
        self._subscribers.discard(queue)

    def close_watches(self) -> None:
        for queue in self._subscribers:
            queue.put_nowait(None)
