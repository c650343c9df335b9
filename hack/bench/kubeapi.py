"""Benchmark of the test API server (proxnix_testbed.kubeapi): start-up time and create+status-patch throughput.

Run: `.venv/bin/python hack/bench/kubeapi.py [--pairs 1000] [--concurrency 1,8]`. The server runs as the standalone
subprocess (as end-to-end tests use it); the client is aiohttp in this process. Only 127.0.0.1 is contacted, and
every loop is bounded by --pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp

from proxnix_testbed.kubeapi import serve

GROUP = "bench.proxnix.io"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"things.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"n": {"type": "integer"}}},
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}
THINGS = f"/apis/{GROUP}/v1/namespaces/default/things"


def start_subprocess(workdir: pathlib.Path) -> tuple[subprocess.Popen[str], dict[str, Any], float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxnix_testbed.kubeapi", "--kubeconfig", str(workdir / "kubeconfig")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    return proc, ready, time.monotonic() - started


def stop_subprocess(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


async def in_process_startup(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        async with serve() as running:
            times.append(running.startup_seconds)
    return times


async def pairs(url: str, count: int, concurrency: int, prefix: str) -> float:
    """Create `count` objects and patch each one's status; returns pairs per second."""
    async with aiohttp.ClientSession(url) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(count):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                name = f"{prefix}-{n}"
                body = {
                    "apiVersion": f"{GROUP}/v1",
                    "kind": "Thing",
                    "metadata": {"name": name},
                    "spec": {"n": n},
                }
                async with session.post(THINGS, json=body) as rsp:
                    assert rsp.status == 201, await rsp.text()
                patch = {"status": {"phase": "Ready"}}
                headers = {"Content-Type": "application/merge-patch+json"}
                async with session.patch(
                    f"{THINGS}/{name}/status", data=json.dumps(patch), headers=headers
                ) as rsp:
                    assert rsp.status == 200, await rsp.text()

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.monotonic() - started)


async def get_latency(url: str, samples: int = 50) -> float:
    async with aiohttp.ClientSession(url) as session:
        times = []
        for _ in range(samples):
            started = time.monotonic()
            async with session.get(THINGS + "?limit=1") as rsp:
                await rsp.read()
            times.append(time.monotonic() - started)
        return statistics.median(times) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", type=int, default=1000, help="create+status-patch pairs per run (default 1000)"
    )
    parser.add_argument(
        "--concurrency", default="1,8", help="comma-separated client concurrencies (default 1,8)"
    )
    args = parser.parse_args()

    startups = await in_process_startup(6)
    print(
        f"start-up in-process (serve()): first {startups[0] * 1000:.1f} ms, "
        f"then median {statistics.median(startups[1:]) * 1000:.1f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        proc, ready, wall = start_subprocess(pathlib.Path(tmp))
        try:
            print(f"start-up standalone subprocess (exec to ready line): {wall * 1000:.0f} ms")
            crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
            async with aiohttp.ClientSession(ready["url"]) as session, session.post(crds, json=CRD) as rsp:
                assert rsp.status == 201
            before = await get_latency(ready["url"])
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                rate = await pairs(ready["url"], args.pairs, concurrency, f"c{concurrency}")
                print(
                    f"create+status-patch pairs/s (concurrency {concurrency}, {args.pairs} pairs): {rate:.0f}"
                )
            after = await get_latency(ready["url"])
            print(f"GET latency (median): {before:.1f} ms at start, {after:.1f} ms after the runs")
        finally:
            stop_subprocess(proc)


if __name__ == "__main__":
    asyncio.run(main())
