"""Benchmark: the cost of a no-op resync of many ProxmoxVMs through the whole operator.

Brings up the sandbox (pvesim nodes behind real sshd, a real control plane, `proxnix operator`), creates the VMs
through the operator (with no simulated latency, to be quick), waits until all are Running, then sets the nodes'
per-call latency (the cost of a real qm/pvesh start-up), lets one interval pass, clears the call logs and watches
a few resync intervals in which nothing changes.

Prints, per node, the qm/pvesh calls and SSH sessions seen, how long one node's resync call takes and how old the
oldest VM status is at the end; last line:
    resync: <vms> VMs on <nodes> nodes at latency <s> s: <n> remote calls per node per <s> s resync (...)
Usage: hack/bench/resync.py --nodes 3 --vms 100 --latency 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from proxnix_testbed.sandbox import Sandbox, SandboxConfig, running_sandbox
from pvesim import calllog, control

# The liveness probe's pings (proxnix.adapters.node_liveness.PING_COMMAND) are counted apart: they are not resync.
LIVENESS_MARK = "proxnix liveness probe"


def _vm(name: str, vmid: int, node: str, image: Path) -> dict[str, object]:
    return {
        "apiVersion": "proxnix.io/v1alpha1",
        "kind": "ProxmoxVM",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"node": node, "vmid": vmid, "memoryMiB": 256, "image": {"source": str(image)}},
    }


def _items(sb: Sandbox) -> list[dict[str, object]]:
    out = sb.kubectl("get", "proxmoxvms", "-n", "default", "-o", "json").out
    items: list[dict[str, object]] = json.loads(out)["items"]
    return items


def _status(item: dict[str, object]) -> dict[str, object]:
    status = item.get("status") or {}
    assert isinstance(status, dict)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--resync-interval", type=float, default=20.0)
    parser.add_argument("--windows", type=int, default=3, help="resync intervals to watch")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="proxnix-bench-resync-"))
    config = SandboxConfig(
        dir=workdir,
        nodes=args.nodes,
        resync_interval=args.resync_interval,
        sim_settings={"agent_delay": 0.2},
    )
    with running_sandbox(config) as sb:
        assert sb.cluster is not None
        names = [n.name for n in sb.cluster.nodes]
        image = sb.make_image("bench", "1G")
        started = time.monotonic()
        docs = [_vm(f"vm{i:03d}", 1000 + i, names[i % len(names)], image) for i in range(args.vms)]
        sb.apply("\n".join(json.dumps(d) for d in docs))
        sb.wait_for(
            lambda: (
                sum(
                    1
                    for it in _items(sb)
                    if _status(it).get("phase") == "Running" and _status(it).get("ipAddresses")
                )
                == args.vms
            ),
            timeout=900,
            what=f"{args.vms} VMs Running with an IP",
        )
        print(
            f"created {args.vms} VMs through the operator in {time.monotonic() - started:.1f} s (latency 0)"
        )

        control.tune(sb.sim_dir, latency=args.latency)
        # Let the creation's stragglers (agent polls, first resyncs) finish: one whole interval, then watch one
        # resync window from a clean call log.
        time.sleep(args.resync_interval)
        calllog.clear(sb.sim_dir)
        t0 = time.monotonic()
        time.sleep(args.windows * args.resync_interval)
        window = time.monotonic() - t0
        now = datetime.now(UTC)
        staleness = max(
            (
                now - datetime.fromisoformat(str(_status(it)["lastSyncTime"]).replace("Z", "+00:00"))
            ).total_seconds()
            for it in _items(sb)
        )
        total_calls = 0
        total_sessions = 0
        slowest = 0.0
        for node in names:
            calls = calllog.read(sb.sim_dir, node)
            everything = calllog.read_sessions(sb.sim_dir, node)
            sessions = [s for s in everything if LIVENESS_MARK not in s.command]
            pings = len(everything) - len(sessions)
            total_calls += len(calls)
            total_sessions += len(sessions)
            kinds = sorted({" ".join(c.argv[:3]) for c in calls})
            took = max((s.duration for s in sessions), default=0.0)
            slowest = max(slowest, took)
            print(
                f"  {node}: {len(calls)} qm/pvesh calls in {len(sessions)} SSH sessions over {window:.0f} s "
                f"(slowest session {took:.2f} s; and {pings} liveness pings on their own connection): "
                f"{', '.join(kinds) or '-'}"
            )
        errors = [it for it in _items(sb) if _status(it).get("phase") != "Running"]
        if errors:
            print(f"{len(errors)} VMs not Running after the window", file=sys.stderr)
            return 1
    per_node = total_sessions / len(names) / args.windows
    print(
        f"resync: {args.vms} VMs on {args.nodes} nodes at latency {args.latency} s: {per_node:.2f} remote calls "
        f"per node per {args.resync_interval:.0f} s resync ({total_calls} qm/pvesh calls in {total_sessions} SSH "
        f"sessions over {window:.0f} s); one node's resync call takes {slowest:.2f} s; "
        f"oldest VM status {staleness:.0f} s old"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
