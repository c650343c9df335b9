"""Bursts of pushes: when new webhook marks (`proxnix.io/requested-at`, written by the sidecar with the pushed
revision) arrive while a reconcile is fetching a revision it has not built, it waits until the marks stop for a
quiet period, bounded, and fetches again, so that a burst costs one evaluation and one build of its newest commit
instead of one per commit that happened to be the head when a run started.

A single push pays nothing: the run started on its mark, and no newer mark is found (one GET of the GitRepo).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from proxnix.adapters.kube import KubeError
from proxnix.api.gitrepo import INFO
from proxnix.api.meta import ANNOTATION_REQUESTED_AT
from proxnix.reconcile.gitrepo.ports import Cluster
from proxnix.reconcile.gitrepo.ref import GitRepoRef

QUIET_S = 2.0
"""Pushes less than this apart are one burst."""
LIMIT_S = 30.0
"""The longest a reconcile waits for a burst to end (a steady stream of pushes is still built)."""


async def current_mark(cluster: Cluster, ref: GitRepoRef) -> str:
    """The GitRepo's `proxnix.io/requested-at` as the API server has it now (the run's own if it cannot be read:
    the check is an optimisation, never a reason to fail)."""
    try:
        live = await cluster.get_object(INFO.plural, ref.namespace, ref.name)
    except KubeError:
        return ref.requested_at
    if live is None:
        return ref.requested_at
    return str(((live.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_REQUESTED_AT, ""))


async def wait_for_quiet(
    read_mark: Callable[[], Awaitable[str]],
    mark: str,
    *,
    quiet: float = QUIET_S,
    limit: float = LIMIT_S,
) -> None:
    """Return once `read_mark()` has not changed for `quiet` seconds (from `mark`, last seen now), or after `limit`."""
    start = last_change = time.monotonic()
    poll = max(quiet / 4, 0.01)
    while time.monotonic() - start < limit and time.monotonic() - last_change < quiet:
        await asyncio.sleep(poll)
        now = await read_mark()
        if now != mark:
            mark, last_change = now, time.monotonic()
