"""The test flakes (tests/fixtures/flakes): write a flake tree with one of the VM variants into a folder.

A tree is `flake.nix`, `lib.nix` (qcow2 images made with qemu-img, no nixpkgs), `labels.nix` (one label per image:
a changed label is a changed image) and `vms.nix` (a variant from tests/fixtures/flakes/vms/).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

FLAKES = Path(__file__).resolve().parents[1] / "fixtures" / "flakes"
VARIANTS = sorted(p.stem for p in (FLAKES / "vms").glob("*.nix"))
DEFAULT_LABELS = {"web": "web-v1", "db": "db-v1", "unused": "never-built"}


def write_labels(folder: Path, labels: Mapping[str, str]) -> None:
    body = " ".join(f'{name} = "{label}";' for name, label in sorted(labels.items()))
    (folder / "labels.nix").write_text(f"{{ {body} }}\n")


def write_flake(folder: Path, variant: str = "fleet", labels: Mapping[str, str] | None = None) -> Path:
    """Write the flake tree with `vms/<variant>.nix` as vms.nix into `folder` (created); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("flake.nix", "lib.nix"):
        shutil.copyfile(FLAKES / "tree" / name, folder / name)
    shutil.copyfile(FLAKES / "vms" / f"{variant}.nix", folder / "vms.nix")
    write_labels(folder, {**DEFAULT_LABELS, **(labels or {})})
    return folder
