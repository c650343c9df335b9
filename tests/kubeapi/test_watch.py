"""Watches: only changes newer than resourceVersion, server-side timeoutSeconds, selectors, 410 for trimmed history."""

from __future__ import annotations

import threading
import time

from tests.kubeapi.conftest import WIDGETS, widget
from tests.support.kubeapi import running_kubeapi


def _summary(events):
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def test_watch_without_resource_version_lists_current_objects_first(widgets_api):
    widgets_api.post(WIDGETS, widget("a"))
    widgets_api.post(WIDGETS, widget("b"))
    widgets_api.delete(f"{WIDGETS}/b")
    assert _summary(widgets_api.watch(WIDGETS, 0.3)) == [("ADDED", "a")]


def test_watch_from_resource_version_sends_only_newer_changes(widgets_api):
    a = widgets_api.post(WIDGETS, widget("a")).body
    widgets_api.patch(f"{WIDGETS}/a", {"spec": {"size": 2}})
    widgets_api.post(WIDGETS, widget("b"))
    widgets_api.delete(f"{WIDGETS}/a")
    rv = a["metadata"]["resourceVersion"]
    events = widgets_api.watch(f"{WIDGETS}?resourceVersion={rv}", 0.3)
    assert _summary(events) == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    assert events[0]["object"]["spec"]["size"] == 2
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)
    assert rvs[0] > int(rv)
    latest = widgets_api.get(WIDGETS).body["metadata"]["resourceVersion"]
    assert widgets_api.watch(f"{WIDGETS}?resourceVersion={latest}", 0.3) == []


def test_watch_streams_live_changes_and_ends_at_timeout(widgets_api):
    rv = widgets_api.get(WIDGETS).body["metadata"]["resourceVersion"]
    result: list = []
    watcher = threading.Thread(
        target=lambda: result.extend(widgets_api.watch(f"{WIDGETS}?resourceVersion={rv}", 1.5))
    )
    started = time.monotonic()
    watcher.start()
    widgets_api.post(WIDGETS, widget("live"))
    watcher.join(10)
    elapsed = time.monotonic() - started
    assert not watcher.is_alive()
    assert _summary(result) == [("ADDED", "live")]
    assert 1.0 <= elapsed < 5.0  # the server ended the stream at timeoutSeconds


def test_watch_in_namespace_and_with_selectors(widgets_api):
    widgets_api.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    rv = widgets_api.get(WIDGETS).body["metadata"]["resourceVersion"]
    widgets_api.post(WIDGETS.replace("/default/", "/other/"), widget("elsewhere"))
    widgets_api.post(WIDGETS, widget("plain"))
    labelled = widget("labelled")
    labelled["metadata"]["labels"] = {"tier": "web"}
    widgets_api.post(WIDGETS, labelled)
    widgets_api.patch(f"{WIDGETS}/plain", {"metadata": {"labels": {"tier": "web"}}})  # enters the selection
    widgets_api.patch(f"{WIDGETS}/labelled", {"metadata": {"labels": {"tier": "db"}}})  # leaves it
    assert _summary(widgets_api.watch(f"{WIDGETS}?resourceVersion={rv}", 0.3)) == [
        ("ADDED", "plain"),
        ("ADDED", "labelled"),
        ("MODIFIED", "plain"),
        ("MODIFIED", "labelled"),
    ]
    selected = widgets_api.watch(f"{WIDGETS}?resourceVersion={rv}&labelSelector=tier%3Dweb", 0.3)
    assert _summary(selected) == [("ADDED", "labelled"), ("ADDED", "plain"), ("DELETED", "labelled")]
    cluster = widgets_api.watch(f"/apis/example.proxnix.io/v1/widgets?resourceVersion={rv}", 0.3)
    assert ("ADDED", "elsewhere") in _summary(cluster)


def test_watch_one_object_by_name(widgets_api):
    rv = widgets_api.get(WIDGETS).body["metadata"]["resourceVersion"]
    widgets_api.post(WIDGETS, widget("a"))
    widgets_api.post(WIDGETS, widget("b"))
    assert _summary(
        widgets_api.watch(f"{WIDGETS}?resourceVersion={rv}&fieldSelector=metadata.name%3Db", 0.3)
    ) == [("ADDED", "b")]


def test_send_initial_events_ends_with_a_bookmark(widgets_api):
    widgets_api.post(WIDGETS, widget("a"))
    events = widgets_api.watch(
        f"{WIDGETS}?sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", 0.3
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_too_old_resource_version_is_410_expired(tmp_path):
    with running_kubeapi(tmp_path, watch_history=3) as api:
        rv = api.get("/api/v1/namespaces/default/configmaps").body["metadata"]["resourceVersion"]
        for n in range(5):
            assert (
                api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": f"c{n}"}}).status
                == 201
            )
        events = api.watch(f"/api/v1/namespaces/default/configmaps?resourceVersion={rv}", 0.3)
        assert len(events) == 1
        assert events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410
        assert events[0]["object"]["reason"] == "Expired"
        # Within the retained history a watch resumes normally.
        recent = api.get("/api/v1/namespaces/default/configmaps/c3").body["metadata"]["resourceVersion"]
        assert _summary(
            api.watch(f"/api/v1/namespaces/default/configmaps?resourceVersion={recent}", 0.3)
        ) == [("ADDED", "c4")]
