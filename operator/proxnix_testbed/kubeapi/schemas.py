"""Structural-schema handling of custom objects, in the apiserver's order: prune unknown fields, default, validate.

`StructuralSchema` wraps one CRD version's `openAPIV3Schema`. Validation uses `jsonschema` (Draft 4, whose boolean
`exclusiveMinimum` matches OpenAPI 3.0) on a translation of the schema (`nullable`, `x-kubernetes-int-or-string`,
`x-kubernetes-preserve-unknown-fields`); errors are rendered as the apiserver words them, naming the field.
Not implemented: CEL (`x-kubernetes-validations`), `format` checks, list-type/map-type uniqueness, ratcheting.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from proxnix_testbed.kubeapi.errors import cause

_ROOT_KEYS = ("apiVersion", "kind", "metadata")


def _to_jsonschema(node: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in (
            "nullable",
            "default",
            "description",
            "example",
            "format",
        ):
            continue
        if key == "properties":
            out[key] = {name: _to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "not", "additionalProperties") and isinstance(value, Mapping):
            out[key] = _to_jsonschema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_to_jsonschema(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        int_or_string = [{"type": "integer"}, {"type": "string"}]
        if "anyOf" in out:
            out["allOf"] = [*out.get("allOf", []), {"anyOf": int_or_string}]
        else:
            out["anyOf"] = int_or_string
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _value(value: Any) -> str:
    return (
        json.dumps(value)
        if not isinstance(value, dict | list)
        else "object"
        if isinstance(value, dict)
        else "array"
    )


class StructuralSchema:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        converted = _to_jsonschema(schema)
        converted.setdefault("properties", {})["metadata"] = {"type": "object"}
        self._validator = jsonschema.Draft4Validator(converted)

    # -- pruning ---------------------------------------------------------------------------------------------
    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Drop fields the schema does not declare (in place); return their paths, e.g. `spec.foo`."""
        unknown: list[str] = []
        self._prune(obj, self.schema, "", unknown, root=True)
        return unknown

    def _prune(
        self, value: Any, node: Mapping[str, Any], path: str, unknown: list[str], root: bool = False
    ) -> None:
        if isinstance(value, dict):
            props: Mapping[str, Any] = node.get("properties") or {}
            additional = node.get("additionalProperties")
            preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
            embedded = bool(node.get("x-kubernetes-embedded-resource"))
            for key in list(value):
                sub_path = f"{path}.{key}" if path else key
                if (root or embedded) and key in _ROOT_KEYS and key not in props:
                    continue
                if root and key == "metadata":
                    continue
                if key in props:
                    self._prune(value[key], props[key], sub_path, unknown)
                elif isinstance(additional, Mapping):
                    self._prune(value[key], additional, sub_path, unknown)
                elif additional is True or preserve:
                    continue
                else:
                    del value[key]
                    unknown.append(sub_path)
        elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
            for index, item in enumerate(value):
                self._prune(item, node["items"], f"{path}[{index}]", unknown)

    # -- defaulting ------------------------------------------------------------------------------------------
    def default(self, obj: dict[str, Any]) -> None:
        """Apply `default`s of absent (or null, unless nullable) properties, recursively, in place."""
        self._default(obj, self.schema)

    def _default(self, value: Any, node: Mapping[str, Any]) -> None:
        if isinstance(value, dict):
            props: Mapping[str, Any] = node.get("properties") or {}
            for key, sub in props.items():
                if key in value and value[key] is None and not sub.get("nullable"):
                    del value[key]
                if key not in value and "default" in sub:
                    value[key] = copy.deepcopy(sub["default"])
                if key in value:
                    self._default(value[key], sub)
            additional = node.get("additionalProperties")
            if isinstance(additional, Mapping):
                for key, sub_value in value.items():
                    if key not in props:
                        self._default(sub_value, additional)
        elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
            for item in value:
                self._default(item, node["items"])

    # -- validation ------------------------------------------------------------------------------------------
    def validate(self, obj: Mapping[str, Any]) -> list[dict[str, str]]:
        """Schema violations as apiserver `causes` (`{"reason", "message", "field"}`), sorted by field."""
        causes: list[dict[str, str]] = []
        for error in self._validator.iter_errors(obj):
            causes.extend(_causes_of(error))
        causes.sort(key=lambda c: c["field"])
        return causes


def _causes_of(error: Any) -> list[dict[str, str]]:
    field = _path(error.absolute_path)
    kind = error.validator
    inst = error.instance
    spec = error.validator_value
    if kind == "required":
        missing = [name for name in spec if isinstance(inst, dict) and name not in inst]
        return [
            cause(f"{field}.{name}" if field else name, "Required value", "FieldValueRequired")
            for name in missing
        ]
    if kind == "type":
        types = spec if isinstance(spec, list) else [spec]
        message = f"Invalid value: {_value(inst)}: {field} in body must be of type {' or '.join(types)}: {_type_of(inst)}"
        return [cause(field, message, "FieldValueTypeInvalid")]
    if kind == "enum":
        supported = ", ".join(json.dumps(v) for v in spec)
        return [
            cause(
                field,
                f"Unsupported value: {_value(inst)}: supported values: {supported}",
                "FieldValueNotSupported",
            )
        ]
    if kind == "pattern":
        return [cause(field, f"Invalid value: {_value(inst)}: {field} in body should match '{spec}'")]
    if kind in ("minimum", "maximum"):
        word = "greater" if kind == "minimum" else "less"
        exclusive = bool(error.schema.get("exclusiveMinimum" if kind == "minimum" else "exclusiveMaximum"))
        relation = f"{word} than" if exclusive else f"{word} than or equal to"
        return [cause(field, f"Invalid value: {_value(inst)}: {field} in body should be {relation} {spec}")]
    if kind == "maxLength":
        return [cause(field, f"Too long: may not be more than {spec} bytes", "FieldValueTooLong")]
    if kind == "minLength":
        return [
            cause(
                field, f"Invalid value: {_value(inst)}: {field} in body should be at least {spec} chars long"
            )
        ]
    if kind == "maxItems":
        return [cause(field, f"Too many: {len(inst)}: must have at most {spec} items", "FieldValueTooMany")]
    if kind == "minItems":
        return [
            cause(field, f"Invalid value: {len(inst)}: {field} in body should have at least {spec} items")
        ]
    if kind == "oneOf":
        return [
            cause(
                field,
                f"Invalid value: {_value(inst)}: {field} in body must validate one and only one schema (oneOf)",
            )
        ]
    if kind == "anyOf":
        return [
            cause(
                field,
                f"Invalid value: {_value(inst)}: {field} in body must validate at least one schema (anyOf)",
            )
        ]
    return [cause(field, f"Invalid value: {_value(inst)}: {error.message}")]


def _type_of(value: Any) -> str:
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return '"boolean"'
    if isinstance(value, int):
        return '"integer"'
    if isinstance(value, float):
        return '"number"'
    if isinstance(value, str):
        return '"string"'
    if isinstance(value, list):
        return '"array"'
    return '"object"'
