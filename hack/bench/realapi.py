"""Benchmark: the operator against the real Kubernetes control plane with many ProxmoxVMs.

Starts a control plane with an audit log, the sandbox on it (pvesim nodes, `proxnix operator` as its
ServiceAccount), measures the operator's idle RSS, creates the VMs, waits until all are Running, lets the operator
settle (RSS steady), then watches a few resync intervals in which nothing changes and counts the operator's API
requests in the audit log (by verb and resource).

Prints the figures; last line:
    realapi: <vms> VMs: operator RSS <idle> MB idle, <settled> MB settled; <n> API requests per no-op resync (...)
Usage: hack/bench/realapi.py --vms 1000 --nodes 3
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from proxnix_testbed.controlplane import identities, running_control_plane
from proxnix_testbed.sandbox import Sandbox, SandboxConfig, running_sandbox

OPERATOR_USER = f"system:serviceaccount:{identities.SYSTEM_NAMESPACE}:{identities.OPERATOR}"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _settled_rss(pid: int, within_mb: float = 1.0, samples: int = 5, interval: float = 2.0) -> float:
    """RSS once `samples` readings `interval` s apart stay within `within_mb` of each other."""
    readings: collections.deque[float] = collections.deque(maxlen=samples)
    while True:
        readings.append(_rss_mb(pid))
        if len(readings) == samples and max(readings) - min(readings) <= within_mb:
            return readings[-1]
        time.sleep(interval)


def _running(sb: Sandbox) -> int:
    items: list[dict[str, Any]] = json.loads(sb.kubectl("get", "proxmoxvms", "-o", "json").out)["items"]
    return sum(1 for it in items if (it.get("status") or {}).get("phase") == "Running")


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _operator_requests(audit_log: Path, start: float, end: float) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    with audit_log.open() as file:
        for line in file:
            event = json.loads(line)
            if event.get("stage") != "ResponseComplete" or event["user"].get("username") != OPERATOR_USER:
                continue
            if not start <= _stamp(event["requestReceivedTimestamp"]) < end:
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", event.get("requestURI", "?"))
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            counts[f"{event['verb']} {resource}"] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--resync-interval", type=float, default=60.0)
    parser.add_argument("--windows", type=int, default=2, help="resync intervals to count requests over")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="proxnix-bench-realapi-"))
    with running_control_plane(workdir / "controlplane", audit=True) as plane:
        assert plane.audit_log is not None
        config = SandboxConfig(
            dir=workdir / "sandbox",
            nodes=args.nodes,
            resync_interval=args.resync_interval,
            sim_settings={"agent_delay": 0.2},
            control_plane=plane,
        )
        with running_sandbox(config) as sb:
            assert sb.cluster is not None
            assert sb.operator is not None
            pid = sb.operator.pid
            idle = _settled_rss(pid)
            print(f"operator RSS idle (nodes registered, no VMs): {idle:.0f} MB")

            names = [n.name for n in sb.cluster.nodes]
            image = sb.make_image("bench", "1G")
            docs = [
                {
                    "apiVersion": "proxnix.io/v1alpha1",
                    "kind": "ProxmoxVM",
                    "metadata": {"name": f"vm{i:04d}", "namespace": "default"},
                    "spec": {
                        "node": names[i % len(names)],
                        "vmid": 1000 + i,
                        "memoryMiB": 256,
                        "image": {"source": str(image)},
                    },
                }
                for i in range(args.vms)
            ]
            started = time.monotonic()
            for first in range(0, len(docs), 200):
                sb.apply("\n".join(json.dumps(d) for d in docs[first : first + 200]))
            sb.wait_for(lambda: _running(sb) == args.vms, 3600, f"{args.vms} VMs Running")
            print(f"created {args.vms} VMs through the operator in {time.monotonic() - started:.0f} s")

            time.sleep(args.resync_interval)  # the creation's stragglers: agent polls, first resyncs
            settled = _settled_rss(pid)
            print(f"operator RSS settled with {args.vms} VMs: {settled:.0f} MB")

            start = time.time()
            time.sleep(args.windows * args.resync_interval)
            end = time.time()
            time.sleep(2)  # the audit log is written when a response completes
            counts = _operator_requests(plane.audit_log, start, end)
            for key, count in counts.most_common():
                print(f"  {count / args.windows:8.1f} per resync  {key}")
            per_resync = sum(counts.values()) / args.windows
            if _running(sb) != args.vms:
                print("not every VM Running after the window", file=sys.stderr)
                return 1
    print(
        f"realapi: {args.vms} VMs on {args.nodes} nodes: operator RSS {idle:.0f} MB idle, {settled:.0f} MB settled; "
        f"{per_resync:.0f} API requests per no-op resync of {args.resync_interval:.0f} s "
        f"({per_resync / args.vms:.2f} per VM)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
