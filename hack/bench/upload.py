#!/usr/bin/env python3
"""Benchmark: a new image's upload to a node, the operator's `upload_image` against OpenSSH's `scp`.

    .venv/bin/python hack/bench/upload.py [--size-mib 512] [--runs 3]

Starts its own one-node pvesim cluster (a real sshd on loopback; needs root) and makes a qcow2 image of
`--size-mib` MiB of random (incompressible) data. Each run, in rotating order so load changes hit all alike:
- scp: `scp` with the node's key and known_hosts, OpenSSH's default ciphers, into the image cache folder
  (a new connection each time, as a user's scp; the time of a bare `ssh true` is printed for reference);
- operator, sha256 known: `upload_image(hashed=True)` (the GitRepo path: the nix adapter hashed the store path);
- operator, sha256 unknown: `upload_image()` (hashes the file first).
Each operator run goes from "not on the node" to "published under its final name, verified"; its pool is warm (one
connection open, as the operator's is), and the file is removed between runs. The page cache holds the image for
every contender (it is read once before timing).

CPU seconds per contender are reported too: this process's own (and its children's, for scp) and the node's (the
node's sshd and everything under it: decryption, sftp-server or the receiving script). On a CPU-bound loopback
they tell where the time goes better than wall time when other work shares the machine.

Last line: `upload: scp <MB/s>; operator <MB/s> (<ratio> of scp) with a known sha256, <MB/s> (<ratio>) hashing`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

from proxnix.adapters.image_upload import UploadResult, upload_image  # noqa: E402
from proxnix.adapters.ssh_pool import SshCredentials, SshPool, SshTarget  # noqa: E402
from pvesim import control, sshd  # noqa: E402
from pvesim.control import NodeInfo  # noqa: E402
from pvesim.layout import Layout  # noqa: E402

CACHE_DIR = "/var/lib/vz/proxnix-bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1e6


def make_image(path: Path, size_mib: int) -> str:
    """A qcow2 of `size_mib` MiB of random data (qemu-img convert of a raw file); returns its sha256."""
    raw = path.with_suffix(".raw")
    with raw.open("wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)], check=True)
    raw.unlink()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _times_and_children(pid: int) -> tuple[int, int, list[int]] | None:
    """A process's own and its reaped children's CPU ticks (utime+stime, cutime+cstime: stat fields 14-17,
    man proc) and its children's pids; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # from field 3 on
    return (
        int(fields[11]) + int(fields[12]),
        int(fields[13]) + int(fields[14]),
        [int(k) for k in kids.split()],
    )


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid`'s live descendants (their own and their reaped children's) plus `pid`'s reaped
    children's: everything that ran under the node's sshd since it started."""
    root = _times_and_children(pid)
    if root is None:
        return 0.0
    ticks, todo = root[1], list(root[2])
    while todo:
        found = _times_and_children(todo.pop())
        if found is not None:
            ticks += found[0] + found[1]
            todo.extend(found[2])
    return ticks / CLOCK_TICKS


def own_cpu() -> float:
    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Sample:
    seconds: float
    local_cpu: float
    node_cpu: float
    result: UploadResult | None = None


@dataclass
class Contender:
    name: str
    run: Callable[[], Awaitable[UploadResult | None]]
    samples: list[Sample] = field(default_factory=list)

    def median(self, get: Callable[[Sample], float]) -> float:
        return statistics.median(get(s) for s in self.samples)


def scp_args(node: NodeInfo, local: Path, remote: str) -> list[str]:
    return [
        "scp", "-q", "-i", node.identityFile, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={node.knownHostsFile}", "-o", "BatchMode=yes", "-P", str(node.port),
        str(local), f"{node.user}@{node.host}:{remote}",
    ]  # fmt: skip


@dataclass(frozen=True)
class Setup:
    node: NodeInfo
    sshd_pid: int
    image: Path
    sha256: str
    size: int
    credentials: SshCredentials
    ssh_true: float


def set_up(args: argparse.Namespace, state: Path) -> Setup:
    """The node, the image (hashed once here), the pool's credentials, and what a bare `ssh true` costs."""
    info = control.up(state / "pvesim", nodes=1)
    node = info.node("pve1")
    sshd_pid = sshd.pid_of(Layout((state / "pvesim").resolve()), "pve1")
    assert sshd_pid is not None, "the node's sshd is not running"
    image = state / "image.qcow2"
    print(f"making a {args.size_mib} MiB qcow2 of random data ...", flush=True)
    sha256 = make_image(image, args.size_mib)
    creds = SshCredentials(
        private_key=Path(node.identityFile).read_bytes(), known_hosts=Path(node.knownHostsFile).read_text()
    )
    started = time.monotonic()
    assert subprocess.run(["ssh", *node.ssh_args(), "true"], check=False).returncode == 0
    ssh_true = time.monotonic() - started
    image.read_bytes()  # into the page cache for everyone
    return Setup(node, sshd_pid, image, sha256, image.stat().st_size, creds, ssh_true)


async def bench(args: argparse.Namespace, setup: Setup) -> int:
    node, sshd_pid, image, sha256, size = setup.node, setup.sshd_pid, setup.image, setup.sha256, setup.size
    final = f"{CACHE_DIR}/{sha256}.qcow2"
    async with SshPool(SshTarget(node.host, node.port, node.user, node.name), setup.credentials) as pool:
        await pool.run(f"mkdir -p -m 0700 {CACHE_DIR}")

        async def scp() -> None:
            done = await asyncio.to_thread(
                subprocess.run, scp_args(node, image, f"{CACHE_DIR}/scp.qcow2"), check=False
            )
            assert done.returncode == 0, "scp failed"

        async def hashed() -> UploadResult:
            return await upload_image(pool, image, CACHE_DIR, expected_sha256=sha256, hashed=True)

        async def unhashed() -> UploadResult:
            return await upload_image(pool, image, CACHE_DIR)

        contenders = [
            Contender("scp", scp),
            Contender("operator, sha256 known", hashed),
            Contender("operator, hashing", unhashed),
        ]
        print(f"load average before: {os.getloadavg()}", flush=True)
        for run in range(args.runs):
            order = contenders[run % 3 :] + contenders[: run % 3]
            for c in order:
                await pool.run(f"rm -f {CACHE_DIR}/scp.qcow2 {final}")
                cpu0, node0, t0 = own_cpu(), tree_cpu(sshd_pid), time.monotonic()
                result = await c.run()
                t1, cpu1, node1 = time.monotonic(), own_cpu(), tree_cpu(sshd_pid)
                if result is not None:
                    assert not result.skipped, "the image was already on the node"
                    check = await pool.run(["sha256sum", final])
                    assert check.stdout.split()[:1] == [sha256], "the published image does not verify"
                c.samples.append(Sample(t1 - t0, cpu1 - cpu0, node1 - node0, result))
                print(f"  run {run + 1} {c.name}: {size / (t1 - t0) / MB:.0f} MB/s", flush=True)
        print(f"load average after: {os.getloadavg()}")
    scp_time = contenders[0].median(lambda s: s.seconds)
    print(
        f"\nimage: {size / MB:.0f} MB qcow2; {args.runs} runs each, medians; "
        f"`ssh true` (connection set-up that scp pays, the warm pool does not): {setup.ssh_true:.2f} s"
    )
    rates = []
    for c in contenders:
        seconds = c.median(lambda s: s.seconds)
        rate = size / seconds / MB
        rates.append(rate)
        line = (
            f"{c.name:24s} {seconds:6.2f} s {rate:6.0f} MB/s  ratio {scp_time / seconds:4.2f}  "
            f"cpu: here {c.median(lambda s: s.local_cpu):.2f} s, node {c.median(lambda s: s.node_cpu):.2f} s"
        )
        if c.samples[0].result is not None:
            split_hash = c.median(lambda s: s.result.hash_seconds if s.result else 0.0)
            split_transfer = c.median(lambda s: s.result.seconds if s.result else 0.0)
            line += (
                f"  split: hash {split_hash:.2f} s, probe {seconds - split_hash - split_transfer:.2f} s, "
                f"transfer+verify {split_transfer:.2f} s"
            )
        print(line)
    print(
        f"upload: scp {rates[0]:.0f} MB/s; operator {rates[1]:.0f} MB/s ({rates[1] / rates[0]:.2f} of scp) with a "
        f"known sha256, {rates[2]:.0f} MB/s ({rates[2] / rates[0]:.2f}) hashing"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    try:
        return asyncio.run(bench(args, set_up(args, state)))
    finally:
        control.down(state / "pvesim")
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
