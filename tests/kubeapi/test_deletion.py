"""Deletion: finalizers hold objects (deletionTimestamp, generation bump) until they are all removed."""

from __future__ import annotations

from tests.kubeapi.conftest import WIDGETS, widget


def test_delete_without_finalizers_removes_at_once(widgets_api):
    widgets_api.post(WIDGETS, widget("w1"))
    rsp = widgets_api.delete(f"{WIDGETS}/w1")
    assert rsp.status == 200
    assert rsp.body["metadata"]["name"] == "w1"
    assert widgets_api.get(f"{WIDGETS}/w1").status == 404
    assert widgets_api.delete(f"{WIDGETS}/w1").status == 404


def test_finalizers_hold_the_object_until_removed(widgets_api):
    body = widget("w1")
    body["metadata"]["finalizers"] = ["example.proxnix.io/a", "example.proxnix.io/b"]
    widgets_api.post(WIDGETS, body)
    rsp = widgets_api.delete(f"{WIDGETS}/w1")
    assert rsp.status == 200
    marked = widgets_api.get(f"{WIDGETS}/w1").body
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    assert marked["metadata"]["generation"] == 2  # the apiserver bumps it when marking for deletion
    again = widgets_api.delete(f"{WIDGETS}/w1")  # a second delete changes nothing
    assert again.body["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]

    # No new finalizers on an object being deleted.
    rsp = widgets_api.patch(
        f"{WIDGETS}/w1",
        {"metadata": {"finalizers": ["example.proxnix.io/a", "example.proxnix.io/b", "x.io/c"]}},
    )
    assert rsp.status == 422
    # The spec may still change; removing one finalizer keeps it; removing the last one deletes it.
    assert (
        widgets_api.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": ["example.proxnix.io/b"]}}).status
        == 200
    )
    assert widgets_api.get(f"{WIDGETS}/w1").status == 200
    rsp = widgets_api.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": []}})
    assert rsp.status == 200
    assert widgets_api.get(f"{WIDGETS}/w1").status == 404
    # The name is free again.
    assert widgets_api.post(WIDGETS, widget("w1")).status == 201


def test_deleting_a_namespace_deletes_its_content(widgets_api):
    widgets_api.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    team = WIDGETS.replace("/default/", "/team/")
    widgets_api.post(team, widget("plain"))
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.proxnix.io/a"]
    widgets_api.post(team, held)
    widgets_api.delete("/api/v1/namespaces/team")
    ns = widgets_api.get("/api/v1/namespaces/team").body
    assert ns["status"]["phase"] == "Terminating"
    assert widgets_api.get(f"{team}/plain").status == 404
    assert widgets_api.get(f"{team}/held").body["metadata"]["deletionTimestamp"]
    assert widgets_api.post(team, widget("late")).status == 403
    widgets_api.patch(f"{team}/held", {"metadata": {"finalizers": None}})
    assert widgets_api.get("/api/v1/namespaces/team").status == 404


def test_deleting_a_crd_deletes_its_objects_and_unserves_it(widgets_api):
    body = widget("held")
    body["metadata"]["finalizers"] = ["example.proxnix.io/a"]
    widgets_api.post(WIDGETS, body)
    widgets_api.post(WIDGETS, widget("plain"))
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.proxnix.io"
    widgets_api.delete(crd_path)
    assert widgets_api.get(crd_path).body["metadata"]["deletionTimestamp"]
    assert widgets_api.get(f"{WIDGETS}/plain").status == 404
    assert widgets_api.post(WIDGETS, widget("new")).status == 405
    widgets_api.patch(f"{WIDGETS}/held", {"metadata": {"finalizers": None}})
    assert widgets_api.get(crd_path).status == 404
    assert widgets_api.get(WIDGETS).status == 404
