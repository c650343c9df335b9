"""Updates: optimistic concurrency (409), JSON-patch tests (422), PUT, /status semantics, generation, no-op writes."""

from __future__ import annotations

import pytest

from tests.kubeapi.conftest import GROUP, WIDGETS, widget, widget_crd


@pytest.fixture
def w1(widgets_api):
    return widgets_api.post(WIDGETS, widget("w1")).body


def test_stale_resource_version_in_merge_patch_is_409(widgets_api, w1):
    rv = w1["metadata"]["resourceVersion"]
    assert (
        widgets_api.patch(f"{WIDGETS}/w1", {"metadata": {"resourceVersion": rv}, "spec": {"size": 2}}).status
        == 200
    )
    rsp = widgets_api.patch(f"{WIDGETS}/w1", {"metadata": {"resourceVersion": rv}, "spec": {"size": 3}})
    assert rsp.status == 409
    assert rsp.body["reason"] == "Conflict"
    assert "the object has been modified" in rsp.body["message"]
    assert widgets_api.get(f"{WIDGETS}/w1").body["spec"]["size"] == 2


def test_stale_resource_version_in_put_is_409(widgets_api, w1):
    fresh = widgets_api.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}}).body
    stale = dict(w1, spec={"size": 9})
    assert widgets_api.put(f"{WIDGETS}/w1", stale).status == 409
    fresh["spec"]["size"] = 9
    rsp = widgets_api.put(f"{WIDGETS}/w1", fresh)
    assert rsp.status == 200
    assert rsp.body["spec"] == {"size": 9, "color": "red"}


def test_put_of_a_custom_object_requires_a_resource_version(widgets_api, w1):
    body = widget("w1", size=4)
    rsp = widgets_api.put(f"{WIDGETS}/w1", body)
    assert rsp.status == 422
    assert "metadata.resourceVersion" in rsp.body["message"]


def test_put_of_a_missing_object_is_404(widgets_api):
    assert (
        widgets_api.put(
            f"{WIDGETS}/nope", widget("nope") | {"metadata": {"name": "nope", "resourceVersion": "1"}}
        ).status
        == 404
    )


def test_failed_json_patch_test_is_422(widgets_api, w1):
    rv = w1["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.proxnix.io/x"]},
    ]
    assert widgets_api.patch(f"{WIDGETS}/w1", ops, "json").status == 200
    rsp = widgets_api.patch(f"{WIDGETS}/w1", ops, "json")  # rv moved on: the test op fails
    assert rsp.status == 422
    missing = [{"op": "remove", "path": "/spec/nothing"}]
    assert widgets_api.patch(f"{WIDGETS}/w1", missing, "json").status == 422


def test_delete_preconditions_are_409(widgets_api, w1):
    rsp = widgets_api.delete(f"{WIDGETS}/w1", {"preconditions": {"resourceVersion": "1"}})
    assert rsp.status == 409
    rsp = widgets_api.delete(f"{WIDGETS}/w1", {"preconditions": {"uid": "someone-else"}})
    assert rsp.status == 409
    assert (
        widgets_api.delete(f"{WIDGETS}/w1", {"preconditions": {"uid": w1["metadata"]["uid"]}}).status == 200
    )


def test_main_endpoint_ignores_status_when_status_is_a_subresource(widgets_api, w1):
    rsp = widgets_api.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}, "status": {"phase": "Hacked"}})
    assert rsp.status == 200
    assert "status" not in rsp.body
    assert rsp.body["spec"]["size"] == 2


def test_status_endpoint_ignores_everything_but_status(widgets_api, w1):
    rsp = widgets_api.patch(
        f"{WIDGETS}/w1/status",
        {"metadata": {"labels": {"x": "y"}}, "spec": {"size": 99}, "status": {"phase": "Ready"}},
    )
    assert rsp.status == 200
    assert rsp.body["status"] == {"phase": "Ready"}
    assert rsp.body["spec"]["size"] == 1
    assert "labels" not in rsp.body["metadata"]
    assert widgets_api.get(f"{WIDGETS}/w1/status").body["status"] == {"phase": "Ready"}


def test_create_drops_status_when_it_is_a_subresource(widgets_api):
    body = widget("w2") | {"status": {"phase": "Ready"}}
    assert "status" not in widgets_api.post(WIDGETS, body).body


def test_without_status_subresource_status_is_plain_data(kubeapi):
    kubeapi.install_crds(widget_crd(status_subresource=False))
    kubeapi.post(WIDGETS, widget("w1"))
    rsp = kubeapi.patch(f"{WIDGETS}/w1", {"status": {"phase": "Ready"}})
    assert rsp.body["status"] == {"phase": "Ready"}
    assert rsp.body["metadata"]["generation"] == 2  # status is part of the generation without the subresource
    assert kubeapi.patch(f"{WIDGETS}/w1/status", {"status": {}}).status == 404


def test_generation_bumps_on_spec_changes_only(widgets_api, w1):
    def generation() -> int:
        return widgets_api.get(f"{WIDGETS}/w1").body["metadata"]["generation"]

    widgets_api.patch(f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}})
    widgets_api.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}}})
    widgets_api.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": ["example.proxnix.io/f"]}})
    assert generation() == 1
    widgets_api.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}})
    assert generation() == 2
    widgets_api.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}})  # same value: no change
    assert generation() == 2
    widgets_api.patch(f"{WIDGETS}/w1", {"spec": {"color": "blue"}})
    assert generation() == 3


def test_noop_patch_keeps_resource_version(widgets_api, w1):
    rsp = widgets_api.patch(f"{WIDGETS}/w1", {"spec": {"size": 1}})
    assert rsp.body["metadata"]["resourceVersion"] == w1["metadata"]["resourceVersion"]


def test_strategic_merge_patch_merges_maps_and_finalizers(kubeapi):
    path = "/api/v1/namespaces/default/configmaps"
    kubeapi.post(path, {"metadata": {"name": "c", "finalizers": ["a.io/one"]}, "data": {"x": "1", "y": "2"}})
    rsp = kubeapi.patch(
        f"{path}/c", {"metadata": {"finalizers": ["a.io/two"]}, "data": {"y": None, "z": "3"}}, "strategic"
    )
    assert rsp.body["data"] == {"x": "1", "z": "3"}
    assert rsp.body["metadata"]["finalizers"] == ["a.io/one", "a.io/two"]


def test_unsupported_patch_type_is_415(widgets_api, w1):
    rsp = widgets_api.request("PATCH", f"{WIDGETS}/w1", {"spec": {}}, content_type="text/x-nonsense")
    assert rsp.status == 415


def test_custom_resources_without_the_crd_group_are_not_served(widgets_api):
    assert widgets_api.get(f"/apis/{GROUP}/v2/namespaces/default/widgets").status == 404
