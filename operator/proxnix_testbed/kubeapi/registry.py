"""The registry of served resource types: built-in kinds (from kmock's bundled discovery data) and CRD-defined ones.

A `ResourceType` is everything the emulator knows about one group/version/plural: discovery facts (kind, scope,
short names, categories, verbs, subresources), printer columns and, for custom resources, the structural schema.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import re
from collections.abc import Iterator, Mapping
from typing import Any

import kmock

# Built-in API groups served; the rest of kmock's bundle (K3s' gateway CRDs, aggregated metrics) is not.
SERVED_BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "events.k8s.io",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "rbac.authorization.k8s.io",
        "policy",
        "networking.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "discovery.k8s.io",
        "admissionregistration.k8s.io",
        "node.k8s.io",
        "autoscaling",
        "certificates.k8s.io",
        "apiregistration.k8s.io",
        "authorization.k8s.io",
        "authentication.k8s.io",
    }
)
# Subresources the emulator implements; others from the bundle are not advertised.
SERVED_SUBRESOURCES = frozenset({"status"})

DEFAULT_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry of a CRD version."""

    name: str
    type: str
    json_path: str
    description: str = ""
    format: str = ""
    priority: int = 0


@dataclasses.dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    list_kind: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = DEFAULT_VERBS
    subresources: frozenset[str] = frozenset()
    printer_columns: tuple[PrinterColumn, ...] | None = None  # None: the kind's default columns
    schema: Mapping[str, Any] | None = None  # openAPIV3Schema of a CRD version
    selectable_fields: tuple[str, ...] = ()  # CRD `selectableFields` json paths, e.g. ".spec.node"
    crd: str | None = None  # the CRD's name for custom resources; None for built-ins

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    @property
    def custom(self) -> bool:
        return self.crd is not None

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def kmock_resource(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)

    def effective_list_kind(self) -> str:
        return self.list_kind or f"{self.kind}List"

    def effective_singular(self) -> str:
        return self.singular or self.kind.lower()


class Registry:
    """All served resource types, by group/version/plural, with lookups for discovery."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def __len__(self) -> int:
        return len(self._types)

    def add(self, rt: ResourceType) -> None:
        self._types[rt.key] = rt

    def remove(self, key: tuple[str, str, str]) -> None:
        self._types.pop(key, None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self._types.values():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def of_crd(self, crd_name: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.crd == crd_name]

    def group_versions(self) -> dict[str, list[str]]:
        """Group -> served versions (preferred first: the highest-priority kube version, as the apiserver sorts)."""
        result: dict[str, set[str]] = {}
        for rt in self._types.values():
            result.setdefault(rt.group, set()).add(rt.version)
        return {group: sorted(versions, key=version_priority) for group, versions in result.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for rt in self._types.values() if rt.group == group and rt.version == version),
            key=lambda rt: rt.plural,
        )


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of kube-style versions: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0, version)
    major = int(match.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[match.group(2) or ""]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, version)


@functools.cache
def builtin_types() -> tuple[ResourceType, ...]:
    """Built-in resource types from kmock's bundled discovery snapshot (a recent K3s), limited to served groups."""
    bundle = kmock.ResourcesArray()
    # As kmock's load_bundled(), without its deprecated importlib.resources call.
    bundle.load_data(
        gzip.decompress((importlib.resources.files("kmock._internal") / "resources.json.gz").read_bytes())
    )
    types: list[ResourceType] = []
    for res in bundle:
        info = bundle[res]
        if res.group is None or res.version is None or res.plural is None:
            continue
        if res.group not in SERVED_BUILTIN_GROUPS or info.kind is None:
            continue
        if res.group == "apiextensions.k8s.io" or (res.group, res.plural) == ("", "namespaces"):
            subresources = frozenset({"status"})
        else:
            subresources = frozenset(info.subresources) & SERVED_SUBRESOURCES
        types.append(
            ResourceType(
                group=res.group,
                version=res.version,
                plural=res.plural,
                kind=info.kind,
                namespaced=bool(info.namespaced),
                singular=info.singular or "",
                short_names=tuple(sorted(info.shortnames)),
                categories=tuple(sorted(info.categories)),
                verbs=tuple(sorted(info.verbs)) or DEFAULT_VERBS,
                subresources=subresources,
            )
        )
    return tuple(types)
