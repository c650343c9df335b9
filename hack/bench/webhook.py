#!/usr/bin/env python3
"""Load test of the webhook sidecar: N signed pushes over loopback, bounded concurrency, latency percentiles.

    .venv/bin/python hack/bench/webhook.py [--requests 2000] [--concurrency 32] [--gitrepos 100]

The sidecar runs in a child process (this script with `--serve`), serving an in-memory store (`MemoryStore`) that
holds `--gitrepos` GitRepos, each on its own repository with its own webhook secret; the client (aiohttp) sends
GitHub-style signed pushes round-robin over those repositories, each with a fresh commit id, so every request is
verified and patches a GitRepo (no coalescing of identical patches). Errors: any answer but 202, or a transport error;
afterwards the server's /metrics must count every push as marked. The last line is always
`webhook: <n> requests <rps> req/s p99 <ms> ms errors <n>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

from proxnix.sources.webhooks.providers import Provider  # noqa: E402
from proxnix.sources.webhooks.signatures import signature_headers  # noqa: E402
from proxnix.webhook.memory import MemoryStore  # noqa: E402
from proxnix.webhook.sidecar import create_sidecar  # noqa: E402

NS = "bench"


def secret_of(i: int) -> bytes:
    return f"bench-secret-{i}".encode()


def url_of(i: int) -> str:
    return f"https://git.bench.example/team{i % 7}/repo{i}"


async def serve(gitrepos: int, ready_file: str) -> None:
    """Child process: the sidecar over an in-memory store, on an ephemeral loopback port written to `ready_file`."""
    store = MemoryStore()
    for i in range(gitrepos):
        store.add_gitrepo(
            NS, f"repo{i}", f"ssh://git@git.bench.example/team{i % 7}/repo{i}.git", secret=f"s{i}"
        )
        store.secrets[(NS, f"s{i}", "token")] = secret_of(i)
    sidecar = create_sidecar(store)
    runner = web.AppRunner(sidecar.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    await sidecar.index.wait_synced()
    port = runner.addresses[0][1]
    await asyncio.to_thread(Path(ready_file).write_text, str(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def push_body(i: int) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 39 + "1",
            "after": secrets.token_hex(20),
            "repository": {
                "full_name": f"team{i % 7}/repo{i}",
                "clone_url": url_of(i) + ".git",
                "ssh_url": f"git@git.bench.example:team{i % 7}/repo{i}.git",
                "html_url": url_of(i),
            },
            "head_commit": {"message": "bench"},
        }
    ).encode()


async def load(port: int, total: int, concurrency: int, gitrepos: int) -> tuple[list[float], int, float]:
    requests = []
    for n in range(total):
        i = n % gitrepos
        body = push_body(i)
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
        headers |= signature_headers(Provider.GITHUB, body, secret_of(i))
        requests.append((body, headers))
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    url = f"http://127.0.0.1:{port}/hook"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                body, headers = queue.get_nowait()
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status != 202:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            metrics = await response.text()
    marked = next(
        (
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("proxnix_webhook_gitrepos_marked_total")
        ),
        0.0,
    )
    if int(marked) != total - errors:
        print(f"server counted {int(marked)} marked GitRepos, expected {total - errors}")
        errors = max(errors, total - int(marked))
    return latencies, errors, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--gitrepos", type=int, default=100)
    parser.add_argument("--serve", metavar="READY_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.gitrepos, args.serve))
        return 0
    ready = Path(f"/tmp/proxnix-bench-webhook-{os.getpid()}.port")
    ready.unlink(missing_ok=True)
    child = subprocess.Popen(
        [sys.executable, __file__, "--gitrepos", str(args.gitrepos), "--serve", str(ready)]
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() or not ready.read_text():
            if child.poll() is not None or time.monotonic() > deadline:
                print("webhook: the server did not start")
                return 1
            time.sleep(0.05)
        port = int(ready.read_text())
        print(
            f"server: proxnix webhook app in a child process on 127.0.0.1:{port}, in-memory store "
            f"({args.gitrepos} GitRepos, one secret each); client: aiohttp, concurrency {args.concurrency}, "
            "GitHub-signed pushes, each a new commit"
        )
        latencies, errors, elapsed = asyncio.run(load(port, args.requests, args.concurrency, args.gitrepos))
    finally:
        child.terminate()
        child.wait(timeout=10)
        ready.unlink(missing_ok=True)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    rps = len(latencies) / elapsed
    print(f"p50 {p50:.1f} ms, wall {elapsed:.2f} s")
    print(f"webhook: {len(latencies)} requests {rps:.0f} req/s p99 {p99:.1f} ms errors {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
