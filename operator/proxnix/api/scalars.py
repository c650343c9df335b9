"""Validated scalar types shared by the kinds: names, tags, storage and bridge IDs, durations, hashes.

Every pattern here is both a pydantic constraint and (through the generated CRDs) an OpenAPI pattern, so the
regular expressions use only syntax that Python `re` and ECMA-262 read the same way.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

# Proxmox VM name: a DNS name, labels [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? joined by dots (pve-cli-facts §4).
DNS_NAME_PATTERN = r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"
DnsName = Annotated[str, StringConstraints(pattern=DNS_NAME_PATTERN, min_length=1, max_length=253)]

# Proxmox tag charset (pve-cli-facts §2); we store tags lowercase, as `qm set --tags` does.
TAG_PATTERN = r"^[a-z0-9_][a-z0-9_+.-]*$"
Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN, min_length=1, max_length=128)]

# Proxmox storage IDs (pve-storage `pve-storage-id`) and Linux bridge names.
STORAGE_ID_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_.-]*$"
StorageId = Annotated[str, StringConstraints(pattern=STORAGE_ID_PATTERN, min_length=1, max_length=64)]
BRIDGE_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_.-]*$"
BridgeName = Annotated[str, StringConstraints(pattern=BRIDGE_PATTERN, min_length=1, max_length=15)]

# A Linux login name.
USER_PATTERN = r"^[a-z_][a-z0-9_-]*$"
UserName = Annotated[str, StringConstraints(pattern=USER_PATTERN, min_length=1, max_length=32)]

# A host: a DNS name, an IPv4 address, or an IPv6 address (without brackets).
HOST_PATTERN = (
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*|[0-9a-fA-F:.]+)$"
)
Host = Annotated[str, StringConstraints(pattern=HOST_PATTERN, min_length=1, max_length=253)]

SHA256_PATTERN = r"^[0-9a-f]{64}$"
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
COMMIT_PATTERN = r"^[0-9a-f]{40}$"
CommitSha = Annotated[str, StringConstraints(pattern=COMMIT_PATTERN)]

# Go-style durations as Flux and Kubernetes write them: 30s, 5m, 1h30m, 500ms.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str) -> timedelta:
    """Parse a Go-style duration (`1h30m`, `45s`) that already matched DURATION_PATTERN."""
    if not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(
            f"invalid duration {value!r}: use a number with a unit ms, s, m or h, e.g. 5m or 1h30m"
        )
    seconds = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PART.findall(value))
    return timedelta(seconds=seconds)


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN, max_length=32),
    AfterValidator(_check_duration),
]

VMID_MIN = 100
VMID_MAX = 999_999_999
VmId = Annotated[int, Field(ge=VMID_MIN, le=VMID_MAX)]
