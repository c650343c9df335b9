"""kopf 1.45 runs against the test API server unchanged, through the whole lifecycle of an object:
finalizer, create/update/delete handlers, status patches, a timer, Events, and peering (no scanning switched off)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from tests.kubeapi.conftest import GROUP, WIDGETS, widget, widget_crd
from tests.support.kubeapi import KubeAPI, eventually, kopf_login, running_kubeapi

FINALIZER = "example.proxnix.io/test-operator"


def build_operator(
    api: KubeAPI, calls: list[tuple[str, Any]]
) -> tuple[kopf.OperatorRegistry, kopf.OperatorSettings]:
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf_login(api.url))

    @kopf.on.create(GROUP, "v1", "widgets", registry=registry)
    def created(name: str, spec: Any, body: Any, patch: kopf.Patch, **_: Any) -> None:
        calls.append(("create", name))
        patch.status["phase"] = "Created"
        patch.status["size"] = spec["size"]
        kopf.info(body, reason="Created", message=f"widget {name} of size {spec['size']}")

    @kopf.on.update(GROUP, "v1", "widgets", registry=registry)
    def updated(name: str, new: Any, patch: kopf.Patch, **_: Any) -> None:
        calls.append(("update", new["spec"]["size"]))
        patch.status["size"] = new["spec"]["size"]

    @kopf.on.delete(GROUP, "v1", "widgets", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        calls.append(("delete", name))

    @kopf.timer(GROUP, "v1", "widgets", interval=0.2, registry=registry)
    def tick(status: Any, patch: kopf.Patch, **_: Any) -> None:
        patch.status["ticks"] = int(status.get("ticks", 0)) + 1

    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 30
    settings.peering.name = "default"
    return registry, settings


async def test_kopf_lifecycle(tmp_path):
    with running_kubeapi(tmp_path, kopf_peering=True) as api:
        api.install_crds(widget_crd())
        peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "default"}}
        assert api.post("/apis/kopf.dev/v1/namespaces/default/kopfpeerings", peering).status == 201
        calls: list[tuple[str, Any]] = []
        registry, settings = build_operator(api, calls)
        stop, ready = asyncio.Event(), asyncio.Event()
        operator = asyncio.create_task(
            kopf.operator(
                registry=registry, settings=settings, namespaces=["default"], stop_flag=stop, ready_flag=ready
            )
        )
        try:
            await asyncio.wait_for(ready.wait(), 10)
            await asyncio.to_thread(api.post, WIDGETS, widget("w1", size=2))

            def current() -> Any:
                rsp = api.get(f"{WIDGETS}/w1")
                return rsp.body if rsp.status == 200 else None

            body = await eventually(
                lambda: (b := current()) and b.get("status", {}).get("phase") == "Created" and b,
                what="create handler",
            )
            assert FINALIZER in body["metadata"]["finalizers"]
            assert body["status"]["size"] == 2
            assert (
                body["metadata"]["generation"] == 1
            )  # kopf's writes (finalizer, annotations, status) keep it

            await asyncio.to_thread(api.patch, f"{WIDGETS}/w1", {"spec": {"size": 5}})
            await eventually(lambda: (b := current()) and b["status"].get("size") == 5, what="update handler")
            await eventually(
                lambda: (b := current()) and b["status"].get("ticks", 0) >= 2, what="timer ticks"
            )

            events = await eventually(
                lambda: [
                    e
                    for e in api.get("/api/v1/namespaces/default/events").body["items"]
                    if e["reason"] == "Created"
                ],
                what="the Created event",
            )
            assert events[0]["involvedObject"]["name"] == "w1"
            assert events[0]["involvedObject"]["uid"] == body["metadata"]["uid"]

            peers = await eventually(
                lambda: api.get("/apis/kopf.dev/v1/namespaces/default/kopfpeerings/default").body.get(
                    "status"
                ),
                what="kopf's peering presence",
            )
            assert len(peers) == 1

            await asyncio.to_thread(api.delete, f"{WIDGETS}/w1")
            await eventually(
                lambda: api.get(f"{WIDGETS}/w1").status == 404, what="deletion after the delete handler"
            )
            assert calls[0] == ("create", "w1")
            assert ("update", 5) in calls
            assert calls[-1] == ("delete", "w1")
        finally:
            stop.set()
            await asyncio.wait_for(operator, 15)


async def test_kopf_peering_pauses_the_lower_priority_operator(tmp_path):
    with running_kubeapi(tmp_path, kopf_peering=True) as api:
        api.install_crds(widget_crd())
        peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "default"}}
        assert api.post("/apis/kopf.dev/v1/namespaces/default/kopfpeerings", peering).status == 201
        calls_high: list[tuple[str, Any]] = []
        calls_low: list[tuple[str, Any]] = []
        stop = asyncio.Event()
        tasks = []
        try:
            for calls, priority in ((calls_high, 100), (calls_low, 10)):
                registry, settings = build_operator(api, calls)
                settings.peering.priority = priority
                ready = asyncio.Event()
                tasks.append(
                    asyncio.create_task(
                        kopf.operator(
                            registry=registry,
                            settings=settings,
                            namespaces=["default"],
                            stop_flag=stop,
                            ready_flag=ready,
                        )
                    )
                )
                await asyncio.wait_for(ready.wait(), 10)
            path = "/apis/kopf.dev/v1/namespaces/default/kopfpeerings/default"
            peers = await eventually(
                lambda: len(api.get(path).body.get("status") or {}) == 2 and api.get(path).body["status"],
                what="both operators in the peering object",
            )
            assert sorted(p["priority"] for p in peers.values()) == [10, 100]

            await asyncio.to_thread(api.post, WIDGETS, widget("w1"))
            await eventually(
                lambda: ("create", "w1") in calls_high, what="the high-priority operator's handler"
            )
            await asyncio.to_thread(api.delete, f"{WIDGETS}/w1")
            await eventually(lambda: api.get(f"{WIDGETS}/w1").status == 404, what="deletion")
            assert calls_low == []  # paused all along: it saw the object come and go, and did nothing
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
