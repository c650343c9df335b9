"""Label and field selectors (`?labelSelector=`, `?fieldSelector=`): parsing and matching, as the apiserver does."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

_SET_RE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


class SelectorError(ValueError):
    """A selector the apiserver would reject with 400 BadRequest."""


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match objects without the label too.
        return not present or value not in self.values


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    reqs: list[Requirement] = []
    for part in _split_top_level(text or ""):
        if m := _SET_RE.match(part):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            reqs.append(Requirement(key.strip(), "!=", (value.strip(),)))
        elif "==" in part:
            key, value = part.split("==", 1)
            reqs.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif "=" in part:
            key, value = part.split("=", 1)
            reqs.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), "!exists"))
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", part):
            reqs.append(Requirement(part, "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return reqs


@dataclasses.dataclass(frozen=True)
class FieldRequirement:
    path: str
    negate: bool
    value: str


def parse_field_selector(text: str | None) -> list[FieldRequirement]:
    reqs: list[FieldRequirement] = []
    for part in _split_top_level(text or ""):
        if "!=" in part:
            path, value = part.split("!=", 1)
            reqs.append(FieldRequirement(path.strip(), True, value.strip()))
        elif "==" in part:
            path, value = part.split("==", 1)
            reqs.append(FieldRequirement(path.strip(), False, value.strip()))
        elif "=" in part:
            path, value = part.split("=", 1)
            reqs.append(FieldRequirement(path.strip(), False, value.strip()))
        else:
            raise SelectorError(f"invalid selector: '{part}'; can't understand '{part}'")
    return reqs


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form of a dotted field path, as the apiserver's field sets hold it ("" when absent)."""
    current: Any = obj
    for step in path.split("."):
        if not isinstance(current, Mapping) or step not in current:
            return ""
        current = current[step]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


@dataclasses.dataclass(frozen=True)
class Selector:
    labels: tuple[Requirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(
        cls,
        label_selector: str | None,
        field_selector: str | None,
        allowed_field: Callable[[str], bool] = lambda _: True,
    ) -> Selector:
        fields = parse_field_selector(field_selector)
        for req in fields:
            if not allowed_field(req.path):
                raise SelectorError(f"field label not supported: {req.path}")
        return cls(tuple(parse_label_selector(label_selector)), tuple(fields))

    def __bool__(self) -> bool:
        return bool(self.labels or self.fields)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not all(req.matches(labels) for req in self.labels):
            return False
        return all((field_value(obj, req.path) == req.value) != req.negate for req in self.fields)
