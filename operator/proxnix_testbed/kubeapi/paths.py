"""URL paths of the Kubernetes API: which resource, namespace, object and subresource a request addresses.

kmock's own parser mistakes `/api/v1/namespaces[/NAME]` for namespaced paths; this one follows the apiserver:
`/api/v1/namespaces/NS/PLURAL[/NAME[/SUB]]`, `/apis/GROUP/VERSION/...`, and namespaces as a cluster resource.
"""

from __future__ import annotations

import dataclasses

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclasses.dataclass(frozen=True)
class ResourcePath:
    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_resource_path(path: str) -> ResourcePath | None:
    """Parse an API resource path; None for anything else (discovery, /version, /openapi, ...)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None

    namespace: str | None = None
    namespace_subresource = group == "" and len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES
    if rest[0] == "namespaces" and len(rest) >= 3 and not namespace_subresource:
        # /namespaces/NS/PLURAL[/NAME[/SUB]] (but /api/v1/namespaces/NS/status is the namespace's status)
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) >= 2 else None
    subresource = "/".join(rest[2:]) or None
    return ResourcePath(group, version, plural, namespace, name, subresource)
