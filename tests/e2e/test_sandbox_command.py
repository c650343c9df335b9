"""The README's main command: the sandbox comes up, deploys the demo VMs and they run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_sandbox_brings_up_nodes_api_operator_and_demo_vms(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxnix_testbed.sandbox", "--dir", str(tmp_path / "sb"), "--exit-when-ready"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("proxmoxvm.proxnix.io/")]
    assert len(rows) == 2
    assert all(" Running " in row and " True " in row for row in rows), rows
    assert "export KUBECONFIG=" in result.stdout
    # Everything was stopped: no sshd of this sandbox is left.
    assert not list((tmp_path / "sb" / "pvesim" / "nodes").glob("*/sshd.pid"))
