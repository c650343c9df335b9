"""Bursts of pushes: when new webhook marks (`proxnix.io/requested-at`, written by the sidecar with the pushed
revision) arrive while a reconcile is fetching a revision it has not built, it waits until the marks stop for a
quiet period, bounded, and fetches again, so that a burst costs one evaluation and one build of its newest commit
instead of one per commit that happened to be the head when a run started.

A single push pays nothing: the run started on its mark, and no newer mark is found (one GET of the GitRepo).
The same read tells whether the GitRepo was suspended or is being deleted since the run began: then the run applies
nothing (`Superseded`), rather than writing ProxmoxVMs for a GitRepo that no longer wants them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxnix.adapters.kube import KubeError
from proxnix.api.gitrepo import INFO
from proxnix.api.meta import ANNOTATION_REQUESTED_AT
from proxnix.reconcile.gitrepo.ports import Cluster
from proxnix.reconcile.gitrepo.ref import GitRepoRef

QUIET_S = 2.0
"""Pushes less than this apart are one burst."""
LIMIT_S = 30.0
"""The longest a reconcile waits for a burst to end (a steady stream of pushes is still built)."""


@dataclass(frozen=True)
class Live:
    """What a reconcile needs to know of the GitRepo as the API server has it now: its newest push mark, and why
    nothing should be applied any more (suspended or being deleted since the run began; empty: go on)."""

    mark: str
    stop: str = ""


async def live_state(cluster: Cluster, ref: GitRepoRef) -> Live:
    """The GitRepo now (the run's own mark if it cannot be read: the check is an optimisation, never a reason to
    fail)."""
    try:
        live = await cluster.get_object(INFO.plural, ref.namespace, ref.name)
    except KubeError:
        return Live(ref.requested_at)
    if live is None:  # not found: its finalizer keeps it while it is deleted, so this is a stale read
        return Live(ref.requested_at)
    meta = live.get("metadata") or {}
    mark = str((meta.get("annotations") or {}).get(ANNOTATION_REQUESTED_AT, ""))
    if meta.get("deletionTimestamp"):
        return Live(mark, stop="the GitRepo is being deleted")
    if (live.get("spec") or {}).get("suspend") is True:
        return Live(mark, stop="the GitRepo was suspended")
    return Live(mark)


async def wait_for_quiet(
    read: Callable[[], Awaitable[Live]],
    live: Live,
    *,
    quiet: float = QUIET_S,
    limit: float = LIMIT_S,
) -> Live:
    """Once `read()`'s mark has not changed for `quiet` seconds (from `live`, last seen now), or after `limit`, or
    as soon as it says to stop: the last state read."""
    start = last_change = time.monotonic()
    poll = max(quiet / 4, 0.01)
    while not live.stop and time.monotonic() - start < limit and time.monotonic() - last_change < quiet:
        await asyncio.sleep(poll)
        now = await read()
        if now.mark != live.mark:
            last_change = time.monotonic()
        live = now
    return live
