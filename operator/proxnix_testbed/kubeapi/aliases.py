"""Resources that are views of another resource's storage, as in the apiserver: `events.k8s.io/v1` Events are
the core `v1` Events, converted field by field, so an Event posted through either API shows in both (kopf posts
core Events; `kubectl describe` and `kubectl events` read core ones)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

Converter = Callable[[dict[str, Any]], dict[str, Any]]

CORE_EVENTS = ("", "v1", "events")
NEW_EVENTS = ("events.k8s.io", "v1", "events")

# events.k8s.io/v1 field <- core/v1 field (fields with the same name in both are copied as they are)
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
_SHARED = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")


def event_from_core(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key in _SHARED:
        if key in obj:
            out[key] = obj[key]
    for new, old in _RENAMED.items():
        if old in obj:
            out[new] = obj[old]
    return out


def event_to_core(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for key in _SHARED:
        if key in obj:
            out[key] = obj[key]
    for new, old in _RENAMED.items():
        if new in obj:
            out[old] = obj[new]
    return out


@dataclasses.dataclass(frozen=True)
class Alias:
    storage: tuple[str, str, str]  # the resource whose objects are stored
    from_storage: Converter
    to_storage: Converter


ALIASES = {NEW_EVENTS: Alias(CORE_EVENTS, event_from_core, event_to_core)}
