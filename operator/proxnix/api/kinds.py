"""What the CRD generator knows of each kind besides its models: names, printer columns, categories."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry (what `kubectl get` shows)."""

    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0
    format: str | None = None

    def to_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.format:
            column["format"] = self.format
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class KindInfo:
    """Everything the CRD generator needs to know about one kind besides its models."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    description: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    printer_columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)
    categories: tuple[str, ...] = ("proxnix",)


def ready_columns() -> tuple[PrinterColumn, ...]:
    """The Ready column every kind shows (from the Ready condition)."""
    return (
        PrinterColumn(
            "Ready",
            "string",
            '.status.conditions[?(@.type=="Ready")].status',
            "Whether the object is ready (the Ready condition).",
        ),
    )


AGE_COLUMN = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since the object was created.")


@dataclass(frozen=True)
class ObjectRef:
    """One object of a proxnix kind: what a status patch or an Event names."""

    kind: KindInfo
    namespace: str
    name: str
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.kind.plural}/{self.namespace}/{self.name}"
