"""Pure driver tests: parsers, builders, classification and the ownership marker, from fixture files of real
Proxmox output under tests/fixtures/pve/."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pve"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")
