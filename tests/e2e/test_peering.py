"""Two replicas of `proxnix operator` with peering: only the higher-priority one acts, the other stands by."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from proxnix_testbed.controlplane import ControlPlane
from proxnix_testbed.sandbox import Sandbox, SandboxConfig, free_port, running_sandbox
from tests.e2e.conftest import vm_manifest, wait_phase

PEERING = """
apiVersion: kopf.dev/v1
kind: KopfPeering
metadata: {name: proxnix, namespace: default}
"""


@pytest.fixture(scope="module")
def peered(tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane) -> Iterator[Sandbox]:
    config = SandboxConfig(
        dir=tmp_path_factory.mktemp("peering"), nodes=1, standalone=False, control_plane=control_plane
    )
    with running_sandbox(config, operator=False) as sb:
        sb.apply(PEERING)
        yield sb


def _peers(sb: Sandbox) -> dict[str, dict[str, object]]:
    out = sb.kubectl("get", "kopfpeering", "proxnix", "-n", "default", "-o", "json").out
    status: dict[str, dict[str, object]] = json.loads(out).get("status") or {}
    return status


def test_only_the_leader_acts(peered: Sandbox) -> None:
    sb = peered
    sb.start_operator("--priority", "100")
    log = (sb.dir / "standby.log").open("wb")
    standby = subprocess.Popen(
        [
            sys.executable, "-m", "proxnix.cli", "operator", "--namespace", "default",
            "--priority", "10", "--health-listen", f"127.0.0.1:{free_port()}",
        ],
        env=sb.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:
        # Both replicas keep their presence in the peering object; the lower-priority one stays paused.
        sb.wait_for(lambda: len(_peers(sb)) == 2, 60, "both replicas in the KopfPeering")
        assert sorted(p["priority"] for p in _peers(sb).values()) == [10, 100]
        image = sb.make_image("peer", "1G")
        sb.apply(vm_manifest("peer", 301, image))
        wait_phase(sb, "peer", "Running", 60)
        assert "Create: create VM 301" in sb.operator_log()
        standby_log = (sb.dir / "standby.log").read_text(errors="replace")
        assert "VM 301" not in standby_log
        assert "Resuming operations" not in standby_log
        assert standby.poll() is None
    finally:
        standby.terminate()
        standby.wait(15)
