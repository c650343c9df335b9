#!/usr/bin/env python3
"""Benchmark of the simulator's own cost per remote call (what pvesim adds on top of `--latency`).

    .venv/bin/python hack/bench/pvesim_overhead.py [--calls 50] [--keep DIR]

Starts a 1-node cluster (`pvesim up`, latency 0) and times `qm list` three ways:
- connect: a new SSH connection per call (`ssh` with host-key checking);
- mux: one SSH session per call over a shared master connection (ControlMaster), as a connection pool does;
- batch: all calls in one SSH session (`qm list; qm list; ...`).
Each qm/pvesh start-up is also read from pvesim's call log (`duration` covers the command after Python start-up).
The last line is always `pvesim: connect <ms> ms/call; mux <ms> ms/call; batch <ms> ms/call`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

from pvesim import control  # noqa: E402
from pvesim.testing import SimCluster  # noqa: E402


def timed(fn: Callable[[], None], calls: int) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--keep", type=Path, default=None, help="state folder to use and keep")
    args = parser.parse_args()
    state = args.keep or Path(tempfile.mkdtemp(prefix="pvesim-bench-"))
    cluster = SimCluster(control.up(state, nodes=1))
    node = cluster.node("pve1")
    try:
        node.ok("qm create 100 --name bench")

        def connect() -> None:
            for _ in range(args.calls):
                assert node.run("qm list", mux=False).rc == 0

        def mux() -> None:
            for _ in range(args.calls):
                assert node.run("qm list").rc == 0

        def batch() -> None:
            assert node.run("; ".join(["qm list >/dev/null"] * args.calls)).rc == 0

        node.run("true")  # start the master connection
        results = {
            name: timed(fn, args.calls) for name, fn in (("connect", connect), ("mux", mux), ("batch", batch))
        }
        inside = [c.duration * 1000 for c in cluster.calls("pve1") if c.startswith("qm", "list")]
        print(
            f"qm list inside the simulator: median {sorted(inside)[len(inside) // 2]:.2f} ms after start-up"
        )
        print(
            f"pvesim: connect {results['connect']:.1f} ms/call; mux {results['mux']:.1f} ms/call; "
            f"batch {results['batch']:.1f} ms/call"
        )
    finally:
        cluster.close()
        control.down(state)
        if args.keep is None:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
