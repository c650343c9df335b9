"""CRDs: registration into discovery (short names, categories, subresources), OpenAPI v3, and schema handling of
custom objects (validation with the field named, defaults, pruning, strict field validation)."""

from __future__ import annotations

import pytest

from proxnix_testbed.kubeapi.crds import iter_crd_documents
from tests.kubeapi.conftest import GROUP, WIDGETS, widget, widget_crd
from tests.support.kubeapi import REPO_CRDS

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def test_posted_crd_is_established_and_discoverable(kubeapi):
    assert kubeapi.get(f"/apis/{GROUP}/v1").status == 404
    rsp = kubeapi.post(CRDS, widget_crd())
    assert rsp.status == 201
    conditions = {c["type"]: c["status"] for c in rsp.body["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert rsp.body["status"]["acceptedNames"]["shortNames"] == ["wdg"]

    groups = kubeapi.get("/apis").body["groups"]
    assert {
        "name": GROUP,
        "versions": [{"groupVersion": f"{GROUP}/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": f"{GROUP}/v1", "version": "v1"},
    } in groups
    resources = kubeapi.get(f"/apis/{GROUP}/v1").body
    assert resources["groupVersion"] == f"{GROUP}/v1"
    main, status = resources["resources"]
    assert main["name"] == "widgets"
    assert main["kind"] == "Widget"
    assert main["namespaced"] is True
    assert main["shortNames"] == ["wdg"]
    assert main["categories"] == ["gadgets"]
    assert status["name"] == "widgets/status"
    assert kubeapi.post(WIDGETS, widget("w1")).status == 201


def test_core_discovery_group_version_is_v1(kubeapi):
    body = kubeapi.get("/api/v1").body
    assert body["groupVersion"] == "v1"
    names = {r["name"] for r in body["resources"]}
    assert {"namespaces", "namespaces/status", "secrets", "configmaps", "events"} <= names
    assert kubeapi.get("/api").body["versions"] == ["v1"]
    groups = {g["name"] for g in kubeapi.get("/apis").body["groups"]}
    assert {"coordination.k8s.io", "events.k8s.io", "apiextensions.k8s.io"} <= groups


def test_invalid_crd_is_422(kubeapi):
    crd = widget_crd()
    crd["metadata"]["name"] = "wrong.example.proxnix.io"
    rsp = kubeapi.post(CRDS, crd)
    assert rsp.status == 422
    assert "metadata.name" in rsp.body["message"]


def test_crd_update_changes_what_is_served(kubeapi):
    created = kubeapi.post(CRDS, widget_crd()).body
    crd = widget_crd()
    crd["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    crd["spec"]["names"]["shortNames"] = ["wd"]
    assert kubeapi.put(f"{CRDS}/widgets.{GROUP}", crd).status == 200
    assert kubeapi.get(f"/apis/{GROUP}/v1").body["resources"][0]["shortNames"] == ["wd"]


def test_project_crds_load(kubeapi):
    docs = list(iter_crd_documents(REPO_CRDS))
    if not docs:
        pytest.skip("no CRDs generated in crds/ yet")
    kubeapi.install_crds(REPO_CRDS)
    for crd in docs:
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        version = crd["spec"]["versions"][0]["name"]
        assert kubeapi.get(f"/apis/{group}/{version}/namespaces/default/{plural}").status == 200


def test_schema_violations_are_422_naming_the_field(widgets_api):
    rsp = widgets_api.post(WIDGETS, widget("w1", size="big"))
    assert rsp.status == 422
    assert rsp.body["reason"] == "Invalid"
    assert rsp.body["message"] == (
        'Widget.example.proxnix.io "w1" is invalid: spec.size: Invalid value: "big": '
        'spec.size in body must be of type integer: "string"'
    )
    assert rsp.body["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "field": "spec.size",
            "message": 'Invalid value: "big": spec.size in body must be of type integer: "string"',
        }
    ]
    rsp = widgets_api.post(WIDGETS, widget("w1", size=0, color="green"))
    fields = [c["field"] for c in rsp.body["details"]["causes"]]
    assert fields == ["spec.color", "spec.size"]
    assert 'Unsupported value: "green": supported values: "red", "blue"' in rsp.body["message"]
    body = widget("w1")
    del body["spec"]["size"]
    rsp = widgets_api.post(WIDGETS, body)
    assert "spec.size: Required value" in rsp.body["message"]


def test_updates_are_validated_too(widgets_api):
    widgets_api.post(WIDGETS, widget("w1"))
    assert widgets_api.patch(f"{WIDGETS}/w1", {"spec": {"size": -1}}).status == 422
    rsp = widgets_api.patch(f"{WIDGETS}/w1/status", {"status": {"conditions": "not-a-list"}})
    assert rsp.status == 422
    assert "status.conditions" in rsp.body["message"]


def test_defaults_are_applied(widgets_api):
    assert widgets_api.post(WIDGETS, widget("w1")).body["spec"] == {"size": 1, "color": "red"}


def test_unknown_fields_are_pruned_with_a_warning(widgets_api):
    rsp = widgets_api.post(WIDGETS, widget("w1", extra="x"))
    assert rsp.status == 201
    assert "extra" not in rsp.body["spec"]
    assert rsp.headers["Warning"] == '299 - "unknown field \\"spec.extra\\""'
    # status preserves unknown fields in this CRD (x-kubernetes-preserve-unknown-fields)
    rsp = widgets_api.patch(f"{WIDGETS}/w1/status", {"status": {"kopf": {"progress": {}}}})
    assert rsp.body["status"] == {"kopf": {"progress": {}}}


def test_strict_field_validation_rejects_unknown_fields(widgets_api):
    rsp = widgets_api.post(f"{WIDGETS}?fieldValidation=Strict", widget("w1", extra="x"))
    assert rsp.status == 400
    assert 'unknown field "spec.extra"' in rsp.body["message"]


def test_openapi_v3_publishes_crd_schemas(widgets_api):
    index = widgets_api.get("/openapi/v3").body["paths"]
    assert "api/v1" in index
    url = index[f"apis/{GROUP}/v1"]["serverRelativeURL"]
    doc = widgets_api.get(url).body
    schema = doc["components"]["schemas"]["io.proxnix.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": GROUP, "version": "v1", "kind": "Widget"}]
    assert schema["properties"]["spec"]["properties"]["size"]["description"] == "How big."
    patch = doc["paths"][f"/apis/{GROUP}/v1/namespaces/{{namespace}}/widgets/{{name}}"]["patch"]
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][0].items()
