"""Benchmark: how long until the VMs of a hung node and of a refusing node show Unknown, at the default settings.

Brings up the sandbox (default resync interval 30 s, default liveness probe), creates `--vms` VMs on pve2 and
waits until they are Running; then, for each fault — `freeze` (the node's sshd and sessions SIGSTOPped: connections
are accepted, nothing answers) and `down` (the node refuses connections) — injects it, measures the seconds until
every VM on the node shows phase Unknown with Ready=Unknown (reason NodeUnreachable), lifts it and waits until they
are Running again. Nothing may be destroyed.
Last line:
    liveness: frozen node -> VMs Unknown in <s> s; refusing node -> <s> s (goal < 30 s); back Running in <s>/<s> s
Usage: hack/bench/liveness.py --vms 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from proxnix_testbed.sandbox import Sandbox, SandboxConfig, running_sandbox
from pvesim import control


def _vm(name: str, vmid: int, image: Path) -> dict[str, object]:
    return {
        "apiVersion": "proxnix.io/v1alpha1",
        "kind": "ProxmoxVM",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"node": "pve2", "vmid": vmid, "memoryMiB": 256, "image": {"source": str(image)}},
    }


def _items(sb: Sandbox) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        sb.kubectl("get", "proxmoxvms", "-n", "default", "-o", "json").out
    )["items"]
    return items


def _ready(item: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in item.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})


def _all(sb: Sandbox, phase: str, count: int) -> bool:
    items = [it for it in _items(sb) if it.get("status", {}).get("phase") == phase]
    if phase == "Unknown":
        items = [it for it in items if _ready(it).get("status") == "Unknown"]
    return len(items) == count


def _set(sb: Sandbox, fault: str, on: bool) -> None:
    if fault == "freeze":
        control.set_node_frozen(sb.sim_dir, "pve2", on)
    else:
        control.set_node_down(sb.sim_dir, "pve2", on)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="proxnix-bench-liveness-"))
    results: dict[str, tuple[float, float]] = {}
    with running_sandbox(SandboxConfig(dir=workdir, nodes=2)) as sb:
        image = sb.make_image("bench", "1G")
        sb.apply("\n".join(json.dumps(_vm(f"vm{i}", 300 + i, image)) for i in range(args.vms)))
        sb.wait_for(lambda: _all(sb, "Running", args.vms), 300, f"{args.vms} VMs Running")
        time.sleep(35)  # one whole resync interval: every VM has a settled, fresh status
        for fault in ("freeze", "down"):
            started = time.monotonic()
            _set(sb, fault, True)
            try:
                sb.wait_for(lambda: _all(sb, "Unknown", args.vms), 120, f"VMs Unknown ({fault})")
                unknown = time.monotonic() - started
                sample = _ready(_items(sb)[0])
                print(f"{fault}: all {args.vms} VMs Unknown after {unknown:.1f} s: {sample.get('reason')}: "
                      f"{sample.get('message')}")  # fmt: skip
            finally:
                _set(sb, fault, False)
            back_started = time.monotonic()
            sb.wait_for(lambda: _all(sb, "Running", args.vms), 180, f"VMs Running again after {fault}")
            back = time.monotonic() - back_started
            print(f"{fault}: lifted; all Running again after {back:.1f} s")
            results[fault] = (unknown, back)
            time.sleep(35)
    print(
        f"liveness: frozen node -> VMs Unknown in {results['freeze'][0]:.1f} s; refusing node -> "
        f"{results['down'][0]:.1f} s (goal < 30 s); back Running in {results['freeze'][1]:.1f}/"
        f"{results['down'][1]:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
