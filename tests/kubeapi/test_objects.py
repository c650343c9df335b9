"""Creating objects: server-owned metadata, 201/409/404/422, generateName, namespaces, dryRun, protobuf bodies."""

from __future__ import annotations

import base64
import re

from tests.kubeapi.conftest import WIDGETS, widget

SECRETS = "/api/v1/namespaces/default/secrets"


def test_create_returns_201_with_server_metadata(widgets_api):
    rsp = widgets_api.post(WIDGETS, widget("w1"))
    assert rsp.status == 201
    meta = rsp.body["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert int(meta["resourceVersion"]) > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["generation"] == 1
    assert meta["namespace"] == "default"  # taken from the URL when the body has none
    fetched = widgets_api.get(f"{WIDGETS}/w1").body
    assert fetched == rsp.body


def test_client_values_for_server_fields_are_ignored(widgets_api):
    body = widget("w1")
    body["metadata"].update(
        uid="mine", resourceVersion="999", generation=7, creationTimestamp="2000-01-01T00:00:00Z"
    )
    meta = widgets_api.post(WIDGETS, body).body["metadata"]
    assert meta["uid"] != "mine"
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] != "2000-01-01T00:00:00Z"


def test_resource_versions_increase_across_writes(widgets_api):
    rv1 = int(widgets_api.post(WIDGETS, widget("w1")).body["metadata"]["resourceVersion"])
    rv2 = int(widgets_api.post(WIDGETS, widget("w2")).body["metadata"]["resourceVersion"])
    rv3 = int(widgets_api.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}}).body["metadata"]["resourceVersion"])
    assert rv1 < rv2 < rv3


def test_create_existing_is_409_already_exists(widgets_api):
    assert widgets_api.post(WIDGETS, widget("w1")).status == 201
    rsp = widgets_api.post(WIDGETS, widget("w1"))
    assert rsp.status == 409
    assert rsp.body["reason"] == "AlreadyExists"
    assert rsp.body["message"] == 'widgets.example.proxnix.io "w1" already exists'


def test_generate_name_gives_distinct_names(kubeapi):
    event = {
        "metadata": {"generateName": "kopf-event-"},
        "reason": "Test",
        "message": "hi",
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"},
    }
    first = kubeapi.post("/api/v1/namespaces/default/events", event)
    second = kubeapi.post("/api/v1/namespaces/default/events", event)
    assert first.status == second.status == 201
    names = {first.body["metadata"]["name"], second.body["metadata"]["name"]}
    assert len(names) == 2
    assert all(re.fullmatch(r"kopf-event-[a-z0-9]{5}", n) for n in names)


def test_name_required(widgets_api):
    body = widget("x")
    del body["metadata"]["name"]
    rsp = widgets_api.post(WIDGETS, body)
    assert rsp.status == 422
    assert "metadata.name: Required value" in rsp.body["message"]


def test_invalid_names_are_422(kubeapi, widgets_api):
    rsp = widgets_api.post(WIDGETS, widget("Bad_Name"))
    assert rsp.status == 422
    assert rsp.body["reason"] == "Invalid"
    assert rsp.body["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123 subdomain" in rsp.body["message"]
    # Namespaces must be DNS-1123 labels: no dots.
    rsp = kubeapi.post("/api/v1/namespaces", {"metadata": {"name": "a.b"}})
    assert rsp.status == 422
    assert "RFC 1123 label" in rsp.body["message"]


def test_invalid_labels_are_422(widgets_api):
    body = widget("w1")
    body["metadata"]["labels"] = {"ok": "bad value!"}
    rsp = widgets_api.post(WIDGETS, body)
    assert rsp.status == 422
    assert "metadata.labels" in rsp.body["message"]


def test_unknown_namespace_is_404(widgets_api):
    rsp = widgets_api.post(WIDGETS.replace("/default/", "/nowhere/"), widget("w1"))
    assert rsp.status == 404
    assert rsp.body["message"] == 'namespaces "nowhere" not found'


def test_namespace_mismatch_is_400(widgets_api):
    body = widget("w1")
    body["metadata"]["namespace"] = "kube-system"
    assert widgets_api.post(WIDGETS, body).status == 400


def test_wrong_kind_is_400(widgets_api):
    body = widget("w1")
    body["kind"] = "Gadget"
    assert widgets_api.post(WIDGETS, body).status == 400


def test_get_missing_is_404_not_found(widgets_api):
    rsp = widgets_api.get(f"{WIDGETS}/nope")
    assert rsp.status == 404
    assert rsp.body["reason"] == "NotFound"
    assert rsp.body["details"] == {"name": "nope", "group": "example.proxnix.io", "kind": "widgets"}


def test_unknown_resource_is_404(kubeapi):
    assert kubeapi.get("/apis/example.proxnix.io/v1/namespaces/default/widgets").status == 404
    assert kubeapi.get("/api/v1/namespaces/default/gizmos").status == 404


def test_dry_run_does_not_store(widgets_api):
    rsp = widgets_api.post(WIDGETS + "?dryRun=All", widget("w1"))
    assert rsp.status == 201
    assert rsp.body["metadata"]["name"] == "w1"
    assert widgets_api.get(f"{WIDGETS}/w1").status == 404
    assert widgets_api.post(WIDGETS, widget("w1")).status == 201
    before = widgets_api.get(f"{WIDGETS}/w1").body
    rsp = widgets_api.patch(f"{WIDGETS}/w1?dryRun=All", {"spec": {"size": 5}})
    assert rsp.body["spec"]["size"] == 5
    assert widgets_api.delete(f"{WIDGETS}/w1?dryRun=All").status == 200
    assert widgets_api.get(f"{WIDGETS}/w1").body == before


def test_namespaces_are_a_cluster_resource(kubeapi):
    names = [ns["metadata"]["name"] for ns in kubeapi.get("/api/v1/namespaces").body["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    rsp = kubeapi.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    assert rsp.status == 201
    assert rsp.body["status"] == {"phase": "Active"}
    assert rsp.body["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert kubeapi.get("/api/v1/namespaces/team").body["metadata"]["name"] == "team"
    assert kubeapi.post(f"{SECRETS.replace('default', 'team')}", {"metadata": {"name": "s"}}).status == 201


def test_secret_string_data_becomes_data(kubeapi):
    rsp = kubeapi.post(SECRETS, {"metadata": {"name": "s"}, "stringData": {"key": "hunter2"}})
    assert rsp.status == 201
    assert "stringData" not in rsp.body
    assert rsp.body["data"] == {"key": base64.b64encode(b"hunter2").decode()}
    assert rsp.body["type"] == "Opaque"
    assert kubeapi.post(SECRETS, {"metadata": {"name": "t"}, "data": {"k": "not base64!"}}).status == 422


def test_protobuf_secret_from_kubectl_create(kubeapi):
    # Captured from `kubectl create secret generic s1 --from-literal=a=b` (kubectl 1.32 sends protobuf).
    body = (
        b'k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x1e\n\x12\n\x02s1\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
        b'\x12\x06\n\x01a\x12\x01b\x1a\x00\x1a\x00"\x00'
    )
    rsp = kubeapi.request("POST", SECRETS, body, content_type="application/vnd.kubernetes.protobuf")
    assert rsp.status == 201, rsp
    assert rsp.body["data"] == {"a": "Yg=="}


def test_list_has_kind_version_and_resource_version(widgets_api):
    widgets_api.post(WIDGETS, widget("w1"))
    body = widgets_api.get(WIDGETS).body
    assert body["kind"] == "WidgetList"
    assert body["apiVersion"] == "example.proxnix.io/v1"
    assert int(body["metadata"]["resourceVersion"]) >= int(body["items"][0]["metadata"]["resourceVersion"])


def test_list_selectors_and_pagination(widgets_api):
    for name, tier in [("a", "web"), ("b", "db"), ("c", "web"), ("d", "")]:
        body = widget(name)
        if tier:
            body["metadata"]["labels"] = {"tier": tier}
        widgets_api.post(WIDGETS, body)

    def names(query: str) -> list[str]:
        return [o["metadata"]["name"] for o in widgets_api.get(f"{WIDGETS}?{query}").body["items"]]

    assert names("labelSelector=tier%3Dweb") == ["a", "c"]
    assert names("labelSelector=tier%21%3Dweb") == ["b", "d"]
    assert names("labelSelector=tier") == ["a", "b", "c"]
    assert names("labelSelector=%21tier") == ["d"]
    assert names("labelSelector=tier+in+%28db%2Cweb%29") == ["a", "b", "c"]
    assert names("fieldSelector=metadata.name%3Db") == ["b"]
    assert names("fieldSelector=metadata.namespace%3Ddefault") == ["a", "b", "c", "d"]
    assert widgets_api.get(f"{WIDGETS}?fieldSelector=spec.size%3D1").status == 400  # not a selectable field
    first = widgets_api.get(f"{WIDGETS}?limit=3").body
    assert [o["metadata"]["name"] for o in first["items"]] == ["a", "b", "c"]
    rest = widgets_api.get(f"{WIDGETS}?limit=3&continue={first['metadata']['continue']}").body
    assert [o["metadata"]["name"] for o in rest["items"]] == ["d"]
    assert "continue" not in rest["metadata"]


def test_cluster_wide_list_spans_namespaces(widgets_api):
    widgets_api.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    widgets_api.post(WIDGETS, widget("a"))
    widgets_api.post(WIDGETS.replace("/default/", "/other/"), widget("b"))
    items = widgets_api.get("/apis/example.proxnix.io/v1/widgets").body["items"]
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items] == [
        ("default", "a"),
        ("other", "b"),
    ]


def test_events_are_one_storage_under_both_apis(kubeapi):
    core = "/api/v1/namespaces/default/events"
    new = "/apis/events.k8s.io/v1/namespaces/default/events"
    posted = kubeapi.post(
        core,
        {
            "metadata": {"name": "e1"},
            "reason": "Made",
            "message": "core event",
            "involvedObject": {"kind": "ConfigMap", "name": "c", "namespace": "default"},
        },
    )
    assert posted.status == 201
    seen = kubeapi.get(f"{new}/e1").body
    assert seen["apiVersion"] == "events.k8s.io/v1"
    assert seen["note"] == "core event"
    assert seen["regarding"]["name"] == "c"
    rsp = kubeapi.post(
        new,
        {
            "metadata": {"name": "e2"},
            "reason": "Made",
            "note": "new event",
            "type": "Normal",
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "action": "Make",
            "reportingController": "x",
            "reportingInstance": "y",
            "regarding": {"kind": "ConfigMap", "name": "c", "namespace": "default"},
        },
    )
    assert rsp.status == 201
    assert kubeapi.get(f"{core}/e2").body["message"] == "new event"
    assert kubeapi.patch(f"{new}/e2", {"note": "patched"}).body["note"] == "patched"
    assert kubeapi.get(f"{core}/e2").body["message"] == "patched"
    selected = kubeapi.get(f"{core}?fieldSelector=involvedObject.name%3Dc").body["items"]
    assert [e["metadata"]["name"] for e in selected] == ["e1", "e2"]
    assert [e["type"] for e in kubeapi.watch(f"{new}?fieldSelector=regarding.name%3Dc", 0.3)] == [
        "ADDED",
        "ADDED",
    ]
    assert kubeapi.delete(f"{new}/e1").status == 200
    assert kubeapi.get(f"{core}/e1").status == 404
