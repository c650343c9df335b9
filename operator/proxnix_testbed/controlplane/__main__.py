"""`python -m proxnix_testbed.controlplane`: a control plane (with the proxnix CRDs and RBAC) until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from proxnix_testbed.controlplane.binaries import REPO_ROOT
from proxnix_testbed.controlplane.cluster import running_control_plane, write_ready_line
from proxnix_testbed.controlplane.identities import grant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxnix_testbed.controlplane", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="state folder (PKI, etcd data, logs)")
    parser.add_argument(
        "--namespace", action="append", default=[], help="grant proxnix's Roles here (repeatable)"
    )
    parser.add_argument(
        "--audit", action="store_true", help="write every request's metadata to DIR/audit.log"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with running_control_plane(args.dir, audit=args.audit) as plane:
        plane.install(REPO_ROOT / "crds", REPO_ROOT / "manifests" / "crds" / "kopf-peering.yaml")
        grant(plane, args.namespace or ["default"])
        write_ready_line(plane, sys.stdout)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
