"""Fixtures of the operator-side image tests: real qcow2 files made with qemu-img, and a loopback image server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxnix_testbed.image_server import ImageServer


def make_qcow2(path: Path, size: str = "64M", *, backing: Path | None = None) -> Path:
    """A real qcow2 with a little data written into it (so it is not all header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        args += ["-b", str(backing), "-F", "raw"]
    subprocess.run([*args, str(path), size], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 256k", str(path)], capture_output=True, check=True)
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ImageServer]:
    folder = tmp_path / "served"
    make_qcow2(folder / "good.qcow2")
    with ImageServer(folder) as server:
        yield server
