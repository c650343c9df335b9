"""Turn pydantic JSON schemas into Kubernetes structural OpenAPI v3 schemas (no $ref, every node typed).

Rules applied: `$ref` inlined (a sibling description wins), `anyOf [X, null]` collapsed to X (optional fields are
simply omitted), titles and `null` defaults dropped, `additionalProperties: false` dropped (the API server prunes
unknown fields instead; pydantic rejects them in the operator).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

_DROP_KEYS = {"title", "$defs", "additionalProperties"}


class SchemaError(ValueError):
    """A model produced a schema that cannot be made structural."""


def structural_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of a model, as a CRD's openAPIV3Schema embeds it."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.get("$defs", {})
    return _convert(raw, defs, path=model.__name__)


def _resolve(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.rsplit("/", 1)[-1]
    if name not in defs:
        raise SchemaError(f"{path}: unresolved reference {ref}")
    merged = copy.deepcopy(defs[name])
    for key, value in node.items():
        if key != "$ref":
            merged[key] = value
    return merged


def _collapse_optional(node: Schema, path: str) -> Schema:
    variants = node.get("anyOf")
    if variants is None:
        return node
    non_null = [v for v in variants if v.get("type") != "null"]
    if len(non_null) != 1:
        raise SchemaError(f"{path}: unions other than Optional[X] are not structural: {variants}")
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    inner = dict(non_null[0])
    inner.update(merged)
    return inner


def _convert(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    node = _resolve(node, defs, path)
    node = _collapse_optional(node, path)
    node = _resolve(node, defs, path)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP_KEYS or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = value  # only value-validation branches (e.g. `required`) are written by our models
        else:
            out[key] = value
    if "type" not in out and "enum" in out:
        out["type"] = "string"
    if "type" not in out:
        raise SchemaError(f"{path}: schema node has no type: {node}")
    return out


def untyped_nodes(schema: Schema, path: str = "") -> list[str]:
    """Paths of nodes without a type (a structural schema has none)."""
    found: list[str] = []
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        found.append(path or "<root>")
    for name, sub in schema.get("properties", {}).items():
        found.extend(untyped_nodes(sub, f"{path}.{name}"))
    if isinstance(schema.get("items"), dict):
        found.extend(untyped_nodes(schema["items"], f"{path}[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        found.extend(untyped_nodes(schema["additionalProperties"], f"{path}{{}}"))
    return found


def undocumented_properties(schema: Schema, path: str = "") -> list[str]:
    """Paths of properties without a description (`kubectl explain` would show nothing for them). The root's
    `metadata` is exempt: the API server refuses a CRD that says anything but its type."""
    found: list[str] = []
    for name, sub in schema.get("properties", {}).items():
        here = f"{path}.{name}"
        if not sub.get("description") and here != ".metadata":
            found.append(here)
        found.extend(undocumented_properties(sub, here))
    if isinstance(schema.get("items"), dict):
        found.extend(undocumented_properties(schema["items"], f"{path}[]"))
    return found
