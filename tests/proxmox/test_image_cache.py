"""Remote scripts of the content-addressed upload, run with a real `sh` on local files."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
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


def receive(script: str, data: bytes, *, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path} if path is not None else None
    return subprocess.run(
        ["/bin/sh", "-c", script], input=data.decode("latin-1"), encoding="latin-1", capture_output=True,
        check=False, timeout=30, env=env,
    )  # fmt: skip


@dataclass(frozen=True)
class Cache:
    dir: Path
    sha: str
    data: bytes

    @property
    def final(self) -> str:
        return ic.join(str(self.dir), ic.cached_name(self.sha, "raw"))

    def partial(self, nonce: str = "00ff00ff") -> str:
        return ic.join(str(self.dir), ic.partial_name(self.sha, nonce))

    def script(self) -> str:
        return ic.receive_script(self.partial(), self.final, self.sha, len(self.data))

    def files(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir())


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    data = bytes(range(256)) * 4000
    cache_dir = tmp_path / "cache"
    sha = hashlib.sha256(data).hexdigest()
    assert ic.parse_probe(sh(ic.probe_script(str(cache_dir), ic.cached_name(sha, "raw")))) is None
    assert cache_dir.is_dir()
    return Cache(cache_dir, sha, data)


def tools_without_openssl(tmp_path: Path) -> str:
    """A PATH with what the receive script needs, except openssl (a node without it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cat", "stat", "rm", "chmod", "mv", "sha256sum"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize("hasher", ["openssl", "sha256sum"])
def test_receive_publishes_only_a_complete_verified_stream(cache: Cache, tmp_path: Path, hasher: str) -> None:
    path = tools_without_openssl(tmp_path) if hasher == "sha256sum" else None
    done = receive(cache.script(), cache.data, path=path)
    assert ic.parse_receive(done.stdout) == ic.ReceiveResult(ok=True), done.stderr
    assert Path(cache.final).read_bytes() == cache.data
    assert Path(cache.final).stat().st_mode & 0o777 == 0o600
    assert cache.files() == [Path(cache.final).name]  # the partial file became the final one
    assert ic.parse_probe(sh(ic.probe_script(str(cache.dir), Path(cache.final).name))) == len(cache.data)


@pytest.mark.parametrize("hasher", ["openssl", "sha256sum"])
def test_receive_of_other_bytes_publishes_nothing(cache: Cache, tmp_path: Path, hasher: str) -> None:
    path = tools_without_openssl(tmp_path) if hasher == "sha256sum" else None
    other = cache.data[:-1] + b"X"  # same size, other content
    done = receive(cache.script(), other, path=path)
    assert done.returncode == 0, done.stderr
    result = ic.parse_receive(done.stdout)
    assert result == ic.ReceiveResult(ok=False, actual_sha256=hashlib.sha256(other).hexdigest())
    assert "computed sha256" in result.problem(len(cache.data))
    assert cache.files() == []


def test_receive_of_a_short_stream_publishes_nothing(cache: Cache) -> None:
    # A dropped connection or a cancelled client: the node sees EOF early.
    done = receive(cache.script(), cache.data[:1000])
    result = ic.parse_receive(done.stdout)
    assert result == ic.ReceiveResult(ok=False, received=1000)
    assert result.problem(len(cache.data)) == f"the node received 1000 of {len(cache.data)} bytes"
    assert cache.files() == []


def test_receive_that_cannot_write_fails_and_publishes_nothing(cache: Cache) -> None:
    script = ic.receive_script(str(cache.dir / "missing" / "part"), cache.final, cache.sha, len(cache.data))
    done = receive(script, cache.data)
    assert done.returncode != 0
    assert "missing" in done.stderr
    assert cache.files() == []


def test_receive_killed_midway_removes_the_partial_file(cache: Cache) -> None:
    # The `timeout` wrapper's TERM, which goes to the command's whole process group, while the stream is arriving.
    proc = subprocess.Popen(
        ["/bin/sh", "-c", cache.script()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(cache.data[:5000])
    proc.stdin.flush()
    deadline = time.monotonic() + 10
    while not Path(cache.partial()).exists() or Path(cache.partial()).stat().st_size < 5000:
        assert time.monotonic() < deadline, "the partial file never received the first bytes"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) != 0
    proc.stdin.close()
    assert cache.files() == []


def test_receive_script_quotes_and_validates() -> None:
    sha = "a" * 64
    with pytest.raises(ValueError, match="remote path"):
        ic.receive_script("/var/lib/vz/x y", "/var/lib/vz/f", sha, 1)
    with pytest.raises(ValueError, match="sha256"):
        ic.receive_script("/var/lib/vz/p", "/var/lib/vz/f", "a; rm -rf /", 1)
    with pytest.raises(ValueError, match="image size"):
        ic.receive_script("/var/lib/vz/p", "/var/lib/vz/f", sha, -1)


@pytest.mark.parametrize("text", ["", "present lots\n", "absent\nabsent\n"])
def test_probe_parse_errors(text: str) -> None:
    with pytest.raises(ParseError):
        ic.parse_probe(text)


@pytest.mark.parametrize(
    "text", ["", "mv: cannot move\n", "short lots\n", "mismatch 123\n", "ok\nok\n", "short 1\nok\n"]
)
def test_receive_parse_errors(text: str) -> None:
    with pytest.raises(ParseError):
        ic.parse_receive(text)
