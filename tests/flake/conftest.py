"""Fixtures of the flake tests: the real nix outputs captured in tests/fixtures/nix (see capture.py there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NIX_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nix"


def nix_fixture(name: str) -> str:
    return (NIX_FIXTURES / name).read_text()


def eval_output(variant: str) -> Any:
    return json.loads(nix_fixture(f"eval-{variant}.json"))
