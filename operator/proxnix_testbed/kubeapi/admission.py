"""Admission of objects into storage: the type check, kind-specific normalisation (Secrets' stringData, defaults),
and validation (metadata, Secrets, ConfigMaps, CRDs, and custom objects against their structural schema: pruning,
defaulting, `fieldValidation`), raising the 400/422 errors the apiserver gives."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from proxnix_testbed.kubeapi import crds, errors
from proxnix_testbed.kubeapi.errors import cause
from proxnix_testbed.kubeapi.registry import ResourceType
from proxnix_testbed.kubeapi.schemas import StructuralSchema
from proxnix_testbed.kubeapi.validation import metadata_causes

SECRETS = ("", "v1", "secrets")
CONFIGMAPS = ("", "v1", "configmaps")
CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")


def check_type(rt: ResourceType, obj: dict[str, Any]) -> None:
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if api_version is not None and api_version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
        )
    if kind is not None and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind


def admit(
    schema: StructuralSchema | None,
    rt: ResourceType,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    field_validation: str,
) -> list[str]:
    """Normalise and validate `obj` in place for storage; returns warnings; raises 400/422."""
    meta = obj.setdefault("metadata", {})
    name = meta.get("name", "")
    warnings: list[str] = []
    if schema is not None:
        unknown = schema.prune(obj)
        if unknown and field_validation == "Strict":
            fields = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {fields}'
            )
        if field_validation != "Ignore":
            warnings += [f'unknown field "{u}"' for u in unknown]
        schema.default(obj)
    causes = metadata_causes(meta)
    if rt.key == SECRETS:
        causes += admit_secret(obj, old)
    elif rt.key == CONFIGMAPS:
        for key, value in (obj.get("data") or {}).items():
            if not isinstance(value, str):
                causes.append(cause(f"data[{key}]", "Invalid value: must be a string"))
    elif rt.key == CRDS:
        causes += crds.crd_errors(obj)
    if schema is not None:
        causes += schema.validate(obj)
    if causes:
        raise errors.invalid(rt, name, causes)
    return warnings


def admit_secret(obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
    data = dict(obj.get("data") or {})
    causes: list[dict[str, str]] = []
    for key, value in (obj.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            causes.append(cause(f"data[{key}]", f'Invalid value: "{value}": illegal base64 data'))
    if data:
        obj["data"] = data
    obj.setdefault("type", "Opaque")
    if old is not None and old.get("immutable") and old.get("data") != obj.get("data"):
        causes.append(
            cause("data", "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden")
        )
    return causes
