"""Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`, from CRD `additionalPrinterColumns` (JSONPath
cells, `priority`, `date` columns as ages) or from built-in column sets for the core kinds the project uses.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from proxnix_testbed.kubeapi.jsonpath import compile_path
from proxnix_testbed.kubeapi.registry import PrinterColumn, ResourceType

Cell = Callable[[Mapping[str, Any]], Any]

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "priority": 0,
    "description": "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated.",
}


def parse_time(text: str) -> datetime.datetime | None:
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        return f"{minutes}m" if secs % 60 == 0 else f"{minutes}m{secs % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any) -> str | None:
    moment = parse_time(timestamp) if isinstance(timestamp, str) else None
    if moment is None:
        return "<unknown>" if timestamp else None
    return human_duration((datetime.datetime.now(tz=datetime.UTC) - moment).total_seconds())


def _jsonpath_cell(column: PrinterColumn) -> Cell:
    path = compile_path(column.json_path)

    def cell(obj: Mapping[str, Any]) -> Any:
        found = path(obj)
        if not found or found[0] is None:
            return None
        value = found[0]
        if column.type == "string":
            return (
                value
                if isinstance(value, str)
                else json.dumps(value)
                if isinstance(value, dict | list)
                else (("true" if value else "false") if isinstance(value, bool) else str(value))
            )
        if column.type == "integer":
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        if column.type == "number":
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if column.type == "boolean":
            return value if isinstance(value, bool) else None
        if column.type == "date":
            return age(value)
        return None

    return cell


def _meta(field: str) -> Cell:
    return lambda obj: (obj.get("metadata") or {}).get(field)


def _age(obj: Mapping[str, Any]) -> Any:
    return age((obj.get("metadata") or {}).get("creationTimestamp"))


def _event_last_seen(obj: Mapping[str, Any]) -> Any:
    return age(
        obj.get("lastTimestamp")
        or obj.get("eventTime")
        or (obj.get("metadata") or {}).get("creationTimestamp")
    )


def _event_object(obj: Mapping[str, Any]) -> Any:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _column(name: str, type_: str = "string", priority: int = 0, format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": name, "priority": priority}


# (group, plural) -> [(column definition, cell function)], Name first as the apiserver does.
BUILTIN_COLUMNS: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "namespaces"): [
        (_column("Status"), lambda o: (o.get("status") or {}).get("phase")),
        (_column("Age"), _age),
    ],
    ("", "secrets"): [
        (_column("Type"), lambda o: o.get("type")),
        (_column("Data", "integer"), lambda o: len(o.get("data") or {})),
        (_column("Age"), _age),
    ],
    ("", "configmaps"): [
        (_column("Data", "integer"), lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        (_column("Age"), _age),
    ],
    ("", "events"): [
        (_column("Last Seen"), _event_last_seen),
        (_column("Type"), lambda o: o.get("type")),
        (_column("Reason"), lambda o: o.get("reason")),
        (_column("Object"), _event_object),
        (_column("Message"), lambda o: o.get("message")),
    ],
    ("events.k8s.io", "events"): [
        (_column("Last Seen"), _event_last_seen),
        (_column("Type"), lambda o: o.get("type")),
        (_column("Reason"), lambda o: o.get("reason")),
        (_column("Object"), _event_object),
        (_column("Message"), lambda o: o.get("note")),
    ],
    ("coordination.k8s.io", "leases"): [
        (_column("Holder"), lambda o: (o.get("spec") or {}).get("holderIdentity")),
        (_column("Age"), _age),
    ],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        (_column("Created At", format_="date"), _meta("creationTimestamp")),
    ],
}


def columns_for(rt: ResourceType) -> list[tuple[dict[str, Any], Cell]]:
    if rt.printer_columns is not None:
        return [
            (
                {
                    "name": c.name,
                    "type": c.type,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                },
                _jsonpath_cell(c),
            )
            for c in rt.printer_columns
        ]
    return BUILTIN_COLUMNS.get((rt.group, rt.plural), [(_column("Age"), _age)])


def partial_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(
    rt: ResourceType,
    objects: Sequence[Mapping[str, Any]],
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    with_columns: bool = True,
) -> dict[str, Any]:
    columns = columns_for(rt)
    rows = []
    for obj in objects:
        cells = [(obj.get("metadata") or {}).get("name"), *(fn(obj) for _, fn in columns)]
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    result: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}
    result["columnDefinitions"] = (
        [NAME_COLUMN, *(definition for definition, _ in columns)] if with_columns else None
    )
    result["rows"] = rows
    return result
