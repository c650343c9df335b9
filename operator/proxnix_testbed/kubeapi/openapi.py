"""OpenAPI v3 documents (`/openapi/v3` and `/openapi/v3/{api/v1,apis/GROUP/VERSION}`).

They carry each kind's schema (a CRD's `openAPIV3Schema` verbatim, so `kubectl explain` shows its descriptions;
a stub for built-ins) and the object paths with `x-kubernetes-group-version-kind`, whose PATCH operations declare the
`fieldValidation` query parameter: kubectl then validates server-side and never needs OpenAPI v2.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from proxnix_testbed.kubeapi.registry import Registry, ResourceType

OBJECT_META_REF = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

OBJECT_META_SCHEMA: dict[str, Any] = {
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name must be unique within a namespace."},
        "generateName": {"type": "string", "description": "Optional prefix for a server-generated name."},
        "namespace": {
            "type": "string",
            "description": "Namespace defines the space within which each name must be unique.",
        },
        "uid": {
            "type": "string",
            "description": "UID is the unique in time and space value for this object.",
        },
        "resourceVersion": {
            "type": "string",
            "description": "An opaque value that represents the internal version of this object.",
        },
        "generation": {
            "type": "integer",
            "format": "int64",
            "description": "A sequence number representing a specific generation of the desired state.",
        },
        "creationTimestamp": {
            "type": "string",
            "format": "date-time",
            "description": "Time when this object was created.",
        },
        "deletionTimestamp": {
            "type": "string",
            "format": "date-time",
            "description": "Time at which this resource will be deleted.",
        },
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Map of string keys and values for organizing and categorizing objects.",
        },
        "annotations": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Unstructured key value map stored with a resource.",
        },
        "finalizers": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Must be empty before the object is deleted from the registry.",
        },
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object"},
            "description": "List of objects depended by this object.",
        },
    },
}


def schema_name(rt: ResourceType) -> str:
    if rt.group and not rt.custom and rt.group.endswith(".k8s.io"):
        prefix = "io.k8s.api." + rt.group.removesuffix(".k8s.io").split(".")[0]
    elif rt.group:
        prefix = ".".join(reversed(rt.group.split(".")))
    else:
        prefix = "io.k8s.api.core"
    return f"{prefix}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _kind_schema(rt: ResourceType) -> dict[str, Any]:
    if rt.schema is not None:
        schema = copy.deepcopy(dict(rt.schema))
    else:
        schema = {
            "type": "object",
            "description": f"{rt.kind} ({rt.api_version}).",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    props = schema.setdefault("properties", {})
    props.setdefault(
        "apiVersion",
        {
            "type": "string",
            "description": "APIVersion defines the versioned schema of this representation of an object.",
        },
    )
    props.setdefault(
        "kind",
        {
            "type": "string",
            "description": "Kind is a string value representing the REST resource this object represents.",
        },
    )
    props["metadata"] = {
        "allOf": [{"$ref": OBJECT_META_REF}],
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    }
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def _operations(rt: ResourceType, ref: str) -> dict[str, dict[str, Any]]:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scope = f"{base}/namespaces/{{namespace}}" if rt.namespaced else base
    body = {"content": {"application/json": {"schema": {"$ref": ref}}}}
    ok = {"200": body}
    ext = {"x-kubernetes-group-version-kind": _gvk(rt)}
    field_validation = {
        "name": "fieldValidation",
        "in": "query",
        "schema": {"type": "string", "uniqueItems": True},
    }
    patch_body = {
        "content": {
            content_type: {"schema": {"type": "object"}}
            for content_type in (
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            )
        }
    }
    item = {
        "get": {"operationId": f"read{rt.kind}", "responses": ok, **ext, "x-kubernetes-action": "get"},
        "put": {
            "operationId": f"replace{rt.kind}",
            "requestBody": body,
            "responses": ok,
            "parameters": [field_validation],
            **ext,
            "x-kubernetes-action": "put",
        },
        "patch": {
            "operationId": f"patch{rt.kind}",
            "requestBody": patch_body,
            "responses": ok,
            "parameters": [field_validation],
            **ext,
            "x-kubernetes-action": "patch",
        },
        "delete": {
            "operationId": f"delete{rt.kind}",
            "responses": ok,
            **ext,
            "x-kubernetes-action": "delete",
        },
    }
    collection = {
        "get": {"operationId": f"list{rt.kind}", "responses": ok, **ext, "x-kubernetes-action": "list"},
        "post": {
            "operationId": f"create{rt.kind}",
            "requestBody": body,
            "responses": {"201": body},
            "parameters": [field_validation],
            **ext,
            "x-kubernetes-action": "post",
        },
    }
    paths = {f"{scope}/{rt.plural}": collection, f"{scope}/{rt.plural}/{{name}}": item}
    if rt.has_status:
        paths[f"{scope}/{rt.plural}/{{name}}/status"] = {
            k: v for k, v in item.items() if k in ("get", "put", "patch")
        }
    return paths


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    schemas: dict[str, Any] = {"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": OBJECT_META_SCHEMA}
    paths: dict[str, Any] = {}
    for rt in types:
        name = schema_name(rt)
        schemas[name] = _kind_schema(rt)
        paths.update(_operations(rt, f"#/components/schemas/{name}"))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def document_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()


def index(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = group_version_document(registry, group, version)
            if doc is None:
                continue
            key = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={document_hash(doc)}"}
    return {"paths": paths}
