"""Benchmark: one image server that trickles (one byte every 5 s) must not hold up any other VM.

Brings up the sandbox (default resync interval 30 s) and a loopback image server; creates `--vms` VMs, half from a
local image and half from a fast image URL, and waits until they are Running; watches how old their lastSyncTime
gets for `--baseline` seconds (the resync's own staleness). Then creates one VM whose image URL trickles, and while
that download runs for `--duration` seconds:
- samples every 5 s how old the other VMs' status.lastSyncTime is (the largest age seen, and how many distinct
  values each VM showed, are reported);
- creates a VM from another (fast) URL and measures how long until it is Running;
- stops a URL-made VM on its node and measures how long until the operator has it running again.
Last line:
    slow download: <d> s of a trickling URL: other VMs' lastSyncTime at most <s> s old (resync <r> s); ...
Usage: hack/bench/slow_download.py --duration 300
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proxnix_testbed.image_server import ImageServer
from proxnix_testbed.sandbox import Sandbox, SandboxConfig, running_sandbox


def _vm(name: str, vmid: int, node: str, source: str) -> str:
    return json.dumps(
        {
            "apiVersion": "proxnix.io/v1alpha1",
            "kind": "ProxmoxVM",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"node": node, "vmid": vmid, "memoryMiB": 256, "image": {"source": source}},
        }
    )


def _items(sb: Sandbox) -> dict[str, dict[str, Any]]:
    out = sb.kubectl("get", "proxmoxvms", "-n", "default", "-o", "json").out
    return {it["metadata"]["name"]: it for it in json.loads(out)["items"]}


def _phase(sb: Sandbox, name: str) -> str:
    obj = sb.get("proxmoxvm", name)
    return str((obj or {}).get("status", {}).get("phase", ""))


def _age(item: dict[str, Any]) -> float:
    stamp = item.get("status", {}).get("lastSyncTime")
    if not stamp:
        return float("inf")
    return (datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()


def _worst_age(sb: Sandbox, names: list[str], seconds: float) -> float:
    """The largest lastSyncTime age among `names`, sampled every 5 s for `seconds`."""
    worst = 0.0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        items = _items(sb)
        worst = max(worst, *(_age(items[n]) for n in names))
        time.sleep(5)
    return worst


def _power(sb: Sandbox, node: str, vmid: int) -> bool:
    return "status: running" in sb.ssh(node, f"qm status {vmid}").out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=4)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--resync-interval", type=float, default=30.0)
    parser.add_argument(
        "--baseline", type=float, default=90.0, help="seconds watched before the slow download"
    )
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="proxnix-bench-slowdl-"))
    config = SandboxConfig(dir=workdir, nodes=2, resync_interval=args.resync_interval)
    with running_sandbox(config) as sb:
        served = workdir / "served"
        served.mkdir()
        image = sb.make_image("bench", "1G")
        for name in ("fast.qcow2", "other.qcow2", "slow.qcow2"):
            shutil.copy(image, served / name)
        with ImageServer(served) as server:
            others = []
            for i in range(args.vms):
                source = server.url("ok", "fast.qcow2") if i % 2 else str(image)
                others.append(f"vm{i}")
                sb.apply(_vm(f"vm{i}", 400 + i, f"pve{i % 2 + 1}", source))
            sb.wait_for(lambda: all(_phase(sb, n) == "Running" for n in others), 300, "VMs Running")
            print(f"{args.vms} VMs Running ({args.vms // 2} from a URL)")
            baseline = _worst_age(sb, others, args.baseline)
            print(
                f"  without a slow download: lastSyncTime at most {baseline:.0f} s old over {args.baseline:.0f} s"
            )

            started = time.monotonic()
            sb.apply(_vm("slow", 499, "pve1", server.url("trickle", "5", "slow.qcow2")))
            worst = 0.0
            new_url_running: float | None = None
            new_started = 0.0
            restarted: float | None = None
            stopped_at: float | None = None
            url_vm = next(n for i, n in enumerate(others) if i % 2)
            url_vmid, url_node = 400 + others.index(url_vm), f"pve{others.index(url_vm) % 2 + 1}"
            seen: dict[str, set[str]] = {n: set() for n in others}
            while (elapsed := time.monotonic() - started) < args.duration:
                items = _items(sb)
                worst = max(worst, *(_age(items[n]) for n in others))
                for n in others:
                    seen[n].add(str(items[n].get("status", {}).get("lastSyncTime")))
                if elapsed > 20 and "newurl" not in items:
                    sb.apply(_vm("newurl", 498, "pve2", server.url("ok", "other.qcow2")))
                    new_started = time.monotonic()
                if (
                    new_url_running is None
                    and items.get("newurl", {}).get("status", {}).get("phase") == "Running"
                ):
                    new_url_running = time.monotonic() - new_started
                    print(f"  a VM from another URL Running {new_url_running:.1f} s after it was created")
                if elapsed > 40 and stopped_at is None:
                    assert sb.ssh(url_node, f"qm stop {url_vmid}").rc == 0
                    stopped_at = time.monotonic()
                running = stopped_at is not None and restarted is None and _power(sb, url_node, url_vmid)
                if running and stopped_at is not None:
                    restarted = time.monotonic() - stopped_at
                    print(
                        f"  {url_vm} (from a URL) stopped on its node; running again after {restarted:.1f} s"
                    )
                time.sleep(5)
            slow = _items(sb)["slow"]
            ready: dict[str, Any] = next(
                (c for c in slow["status"].get("conditions", []) if c["type"] == "Ready"), {}
            )
            hits = sum(n for p, n in server.hits.items() if "trickle" in p)
    print(
        f"  the slow VM: phase {slow['status'].get('phase')}, {ready.get('reason')}: {ready.get('message')}"
    )
    print(
        f"slow download: {args.duration:.0f} s of a trickling URL ({hits} request): other VMs' lastSyncTime at most "
        f"{worst:.0f} s old (without it: {baseline:.0f} s; resync {args.resync_interval:.0f} s) and each updated at "
        f"least {min(len(v) for v in seen.values())} times; a VM from another "
        "URL Running in "
        f"{new_url_running if new_url_running is not None else float('nan'):.1f} s; a stopped URL VM running again "
        f"in {restarted if restarted is not None else float('nan'):.1f} s"
    )
    return 0 if new_url_running is not None and restarted is not None else 1


if __name__ == "__main__":
    sys.exit(main())
