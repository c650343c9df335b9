"""The version rules of a node's `qm`, in one object (pve-cli-facts, 7.x differences): which commands and options
a node of a given Proxmox VE version understands. Pure: built from the version string `pvesh get /version` reports."""

from __future__ import annotations

import re
from dataclasses import dataclass

CURRENT = (8, 0)


def parse_pve_version(version: str) -> tuple[int, int]:
    """(major, minor) of a PVE version string ("8.3.0", "7.2-4"); an unknown version counts as current."""
    parts = re.findall(r"[0-9]+", version)[:2]
    if not parts:
        return CURRENT
    return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)


@dataclass(frozen=True)
class QmDialect:
    """What differs between the `qm` of the supported PVE versions."""

    legacy_disk_commands: bool = False  # `qm importdisk` / `qm resize` (PVE < 7.3)
    use_digest: bool = True  # `qm set --digest` (optimistic concurrency on the checked config)
    import_from: bool = True  # `qm create/set ... import-from=` (PVE 7.2+); else `qm importdisk` then attach

    @classmethod
    def for_version(cls, version: str) -> QmDialect:
        """The dialect of a node whose `pvesh get /version` reported `version` (e.g. "8.3.0", "7.2-4")."""
        release = parse_pve_version(version)
        return cls(legacy_disk_commands=release < (7, 3), import_from=release >= (7, 2))
