"""The manual trigger: annotating proxnix.io/requested-at reconciles the VM now (not at the next resync) and the
value is echoed to status.lastHandledReconcileAt, as Flux does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proxnix_testbed.controlplane import ControlPlane
from proxnix_testbed.sandbox import Sandbox, SandboxConfig, running_sandbox
from tests.e2e.conftest import events, vm_manifest, wait_phase


@pytest.fixture(scope="module")
def slow_resync(tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane) -> Iterator[Sandbox]:
    # A resync so slow that only the annotation can explain a reaction within the test.
    config = SandboxConfig(
        dir=tmp_path_factory.mktemp("trigger"), nodes=1, resync_interval=600.0, control_plane=control_plane
    )
    with running_sandbox(config) as sb:
        yield sb


def test_annotation_triggers_a_reconcile_and_is_echoed(slow_resync: Sandbox) -> None:
    sb = slow_resync
    image = sb.make_image("poke", "1G")
    sb.apply(vm_manifest("poke", 104, image))
    wait_phase(sb, "poke", "Running", 60)
    assert sb.ssh("pve1", "qm stop 104").rc == 0

    stamp = "2026-11-26T12:00:00Z"
    sb.kubectl("annotate", "proxmoxvm", "poke", "-n", "default", f"proxnix.io/requested-at={stamp}")
    sb.wait_for(
        lambda: (o := sb.get("proxmoxvm", "poke")) and o["status"].get("lastHandledReconcileAt") == stamp,
        20,
        "the trigger echoed to status.lastHandledReconcileAt",
    )
    assert sb.ssh("pve1", "qm status 104").out.strip() == "status: running"
    starts = [e for e in events(sb, "poke") if e["reason"] == "Started"]
    assert len(starts) == 2  # the first start, and the one the trigger caused
    sb.kubectl("delete", "proxmoxvm", "poke", "-n", "default")
