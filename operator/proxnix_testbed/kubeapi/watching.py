"""Watch streams: `?watch=true` answered as JSON lines of `{"type", "object"}` events.

A watch honours `resourceVersion` (only changes newer than it; none given or "0": the current objects as ADDED
first), `timeoutSeconds` (the server ends the stream), `sendInitialEvents` with the `initial-events-end` BOOKMARK,
label/field selectors (an object leaving the selection is sent as DELETED, entering it as ADDED), and answers a
resourceVersion older than the retained change log with an ERROR event `410 Expired`, as kopf expects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp.web

from proxnix_testbed.kubeapi.aliases import Alias
from proxnix_testbed.kubeapi.registry import ResourceType
from proxnix_testbed.kubeapi.selectors import Selector
from proxnix_testbed.kubeapi.store import Change, ObjectStore

# How often an idle watch checks that its client is still connected and the server is not closing.
IDLE_CHECK_SECONDS = 0.5


def _event(type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_, "object": obj}).encode() + b"\n"


def translate(
    change: Change, selector: Selector, view: Callable[[dict[str, Any]], dict[str, Any]] = lambda obj: obj
) -> str | None:
    """The event type a selecting watcher sees for a change, or None when the change is not visible to it."""
    new_match = not selector or selector.matches(view(change.obj))
    if change.type != "MODIFIED":
        return change.type if new_match else None
    old_match = change.old is not None and (not selector or selector.matches(view(change.old)))
    if new_match:
        return "MODIFIED" if old_match else "ADDED"
    return "DELETED" if old_match else None


async def serve_watch(
    raw_request: aiohttp.web.BaseRequest,
    store: ObjectStore,
    rt: ResourceType,
    namespace: str | None,
    selector: Selector,
    params: dict[str, str],
    render: Callable[[dict[str, Any], bool], dict[str, Any]],
    closing: asyncio.Event,
    max_seconds: float | None = None,
    storage: Alias | None = None,
) -> aiohttp.web.StreamResponse:
    """Stream changes until timeoutSeconds, client disconnect or server shutdown. `render(obj, first)` shapes objects;
    for an aliased resource (`storage`), the stored objects are watched and converted."""
    key = storage.storage if storage is not None else rt.key

    def view(obj: dict[str, Any]) -> dict[str, Any]:
        return storage.from_storage(obj) if storage is not None else obj

    loop = asyncio.get_running_loop()
    timeout_text = params.get("timeoutSeconds")
    timeout = float(timeout_text) if timeout_text else max_seconds
    deadline = loop.time() + timeout if timeout else None
    since_text = params.get("resourceVersion") or ""
    send_initial = params.get("sendInitialEvents") == "true"
    bookmarks = params.get("allowWatchBookmarks") == "true"

    def visible(obj: dict[str, Any]) -> bool:
        return namespace is None or obj["metadata"].get("namespace") == namespace

    # Subscribe before taking the snapshot so that no change falls between the two (no awaits in between).
    queue = store.subscribe()
    response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        initial: list[bytes] = []
        first = True
        if since_text in ("", "0") or send_initial:
            since = store.resource_version
            for obj in map(view, store.objects(key, namespace)):
                if not selector or selector.matches(obj):
                    initial.append(_event("ADDED", render(obj, first)))
                    first = False
            if send_initial and bookmarks:
                marker = {
                    "kind": rt.kind,
                    "apiVersion": rt.api_version,
                    "metadata": {
                        "resourceVersion": str(since),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                initial.append(_event("BOOKMARK", marker))
        else:
            try:
                since = int(since_text)
            except ValueError:
                since = -1
            oldest = store.oldest_watchable_rv()
            if since < 0 or since < oldest:
                await response.prepare(raw_request)
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"too old resource version: {since_text} ({oldest})",
                    "reason": "Expired",
                    "code": 410,
                }
                await response.write(_event("ERROR", status))
                await response.write_eof()
                return response
            for change in store.changes_since(since):
                if change.resource == key and visible(change.obj):
                    type_ = translate(change, selector, view)
                    if type_ is not None:
                        initial.append(_event(type_, render(view(change.obj), first)))
                        first = False
                since = change.rv

        await response.prepare(raw_request)
        for line in initial:
            await response.write(line)
        while not closing.is_set():
            transport = raw_request.transport
            if transport is None or transport.is_closing():
                break
            wait = IDLE_CHECK_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    break
            try:
                live: Change | None = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                continue
            if live is None:
                break
            if live.rv <= since or live.resource != key or not visible(live.obj):
                continue
            since = live.rv
            type_ = translate(live, selector, view)
            if type_ is not None:
                await response.write(_event(type_, render(view(live.obj), first)))
                first = False
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        store.unsubscribe(queue)
    return response
