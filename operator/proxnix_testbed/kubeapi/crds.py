"""CustomResourceDefinitions: validating them, turning them into served `ResourceType`s, their status, and
loading a folder of CRD YAML files."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import yaml

from proxnix_testbed.kubeapi.errors import cause
from proxnix_testbed.kubeapi.registry import PrinterColumn, ResourceType
from proxnix_testbed.kubeapi.validation import dns1123_label_errors, dns1123_subdomain_errors

CRD_API_VERSION = "apiextensions.k8s.io/v1"


def crd_errors(crd: dict[str, Any]) -> list[dict[str, str]]:
    """Validation causes for a CRD body (the checks an operator's CRDs are likely to trip)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    causes: list[dict[str, str]] = []
    if not group:
        causes.append(cause("spec.group", "Required value", "FieldValueRequired"))
    elif "." not in group:
        causes.append(
            cause("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot')
        )
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(cause(f"spec.names.{field}", "Required value", "FieldValueRequired"))
    plural = names.get("plural") or ""
    if plural:
        causes += [
            cause("spec.names.plural", f'Invalid value: "{plural}": {e}')
            for e in dns1123_label_errors(plural)
        ]
    name = (crd.get("metadata") or {}).get("name", "")
    if plural and group and name != f"{plural}.{group}":
        causes.append(
            cause("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            cause(
                "spec.scope",
                f'Unsupported value: {spec.get("scope")!r}: supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions or sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            cause("spec.versions", "Invalid value: must have exactly one version marked as storage version")
        )
    for index, version in enumerate(versions):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            causes.append(
                cause(
                    f"spec.versions[{index}].schema.openAPIV3Schema", "Required value", "FieldValueRequired"
                )
            )
        elif schema.get("type") != "object":
            causes.append(
                cause(
                    f"spec.versions[{index}].schema.openAPIV3Schema.type",
                    'Required value: must be "object" at the root',
                )
            )
    for short in names.get("shortNames") or []:
        causes += [
            cause("spec.names.shortNames", f'Invalid value: "{short}": {e}')
            for e in dns1123_subdomain_errors(short)
        ]
    return causes


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One `ResourceType` per served version of the CRD."""
    spec = crd["spec"]
    names = spec["names"]
    types: list[ResourceType] = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        columns = tuple(
            PrinterColumn(
                name=col["name"],
                type=col.get("type", "string"),
                json_path=col["jsonPath"],
                description=col.get("description", ""),
                format=col.get("format", ""),
                priority=int(col.get("priority", 0)),
            )
            for col in version.get("additionalPrinterColumns") or []
        )
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                list_kind=names.get("listKind") or f"{names['kind']}List",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset((version.get("subresources") or {}).keys()) & {"status"},
                printer_columns=columns or None,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                selectable_fields=tuple(f["jsonPath"] for f in version.get("selectableFields") or ()),
                crd=crd["metadata"]["name"],
            )
        )
    return types


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """The status the apiextensions controllers would converge a valid CRD to."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    conditions = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
            "lastTransitionTime": now,
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
            "lastTransitionTime": now,
        },
    ]
    stored = [v["name"] for v in spec["versions"] if v.get("storage")]
    return {"acceptedNames": names, "conditions": conditions, "storedVersions": stored}


def kopf_peering_crds() -> list[dict[str, Any]]:
    """kopf's peering CRDs (as in kopf's docs): an operator run without `--standalone` keeps its presence in a
    KopfPeering (namespaced operators) or ClusterKopfPeering (cluster-wide ones) named by `--peering`."""
    crds = []
    for kind, scope in (("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")):
        plural = kind.lower() + "s"
        schema = {
            "type": "object",
            "properties": {"status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }
        crds.append(
            {
                "apiVersion": CRD_API_VERSION,
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.kopf.dev"},
                "spec": {
                    "scope": scope,
                    "group": "kopf.dev",
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                    "versions": [
                        {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
                    ],
                },
            }
        )
    return crds


def iter_crd_documents(path: pathlib.Path) -> Iterator[dict[str, Any]]:
    """CRD documents in a YAML file or in the `*.yaml`/`*.yml` files of a folder (sorted); other kinds skipped."""
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    for file in files:
        for doc in yaml.safe_load_all(file.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                yield doc
