"""Remote scripts of the content-addressed upload, run with a real `sh` on local files."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from proxnix.proxmox import image_cache as ic
from proxnix.proxmox.errors import ParseError


def sh(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, timeout=30).stdout


def test_names_and_format() -> None:
    sha = "a" * 64
    assert ic.cached_name(sha, "qcow2") == sha + ".qcow2"
    assert ic.partial_name(sha, "0123abcd") == f".{sha}.partial-0123abcd"
    assert ic.image_format(b"QFI\xfb\x00\x00\x00\x03") == "qcow2"
    assert ic.image_format(b"KDMV") == "vmdk"
    assert ic.image_format(b"\x00" * 8) == "raw"
    with pytest.raises(ValueError, match="invalid sha256"):
        ic.cached_name("A" * 64, "qcow2")
    with pytest.raises(ValueError, match="remote path"):
        ic.join("/var/lib/vz", "../etc")


def test_probe_finalize_cycle(tmp_path: Path) -> None:
    data = b"image bytes" * 1000
    sha = hashlib.sha256(data).hexdigest()
    cache_dir = str(tmp_path / "cache")
    final = ic.join(cache_dir, ic.cached_name(sha, "raw"))
    assert ic.parse_probe(sh(ic.probe_script(cache_dir, ic.cached_name(sha, "raw")))) is None
    assert Path(cache_dir).is_dir()
    partial = ic.join(cache_dir, ic.partial_name(sha, "00ff00ff"))
    Path(partial).write_bytes(data[:-1] + b"X")
    bad = ic.parse_finalize(sh(ic.finalize_script(partial, final, sha)))
    assert not bad.ok
    assert bad.actual_sha256 == hashlib.sha256(data[:-1] + b"X").hexdigest()
    assert not Path(partial).exists()
    assert not Path(final).exists()
    Path(partial).write_bytes(data)
    assert ic.parse_finalize(sh(ic.finalize_script(partial, final, sha))).ok
    assert Path(final).read_bytes() == data
    assert not Path(partial).exists()
    assert ic.parse_probe(sh(ic.probe_script(cache_dir, ic.cached_name(sha, "raw")))) == len(data)
    assert ic.parse_sha256sum(sh(ic.verify_script(final))) == sha


@pytest.mark.parametrize("text", ["", "present lots\n", "absent\nabsent\n"])
def test_probe_parse_errors(text: str) -> None:
    with pytest.raises(ParseError):
        ic.parse_probe(text)


def test_finalize_and_sum_parse_errors() -> None:
    with pytest.raises(ParseError):
        ic.parse_finalize("mv: cannot move\n")
    with pytest.raises(ParseError):
        ic.parse_sha256sum("sha256sum: x: No such file or directory\n")
