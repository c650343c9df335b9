"""Killing the operator (SIGKILL) in the middle of provisioning — while a qm command is running on the node —
and starting it again converges to exactly one VM, with no orphaned disk."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from proxnix_testbed.controlplane import ControlPlane
from proxnix_testbed.sandbox import Sandbox, SandboxConfig, running_sandbox
from pvesim import control
from tests.e2e.conftest import condition, node_config, node_vmids, vm_manifest, wait_phase
from tests.support.nodecalls import running_qm


@pytest.fixture(scope="module")
def crash_sandbox(tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane) -> Iterator[Sandbox]:
    config = SandboxConfig(
        dir=tmp_path_factory.mktemp("crash"), nodes=1, resync_interval=5.0, control_plane=control_plane
    )
    with running_sandbox(config) as sb:
        yield sb


def _volumes(sb: Sandbox, vmid: int) -> list[str]:
    folder = sb.sim_dir / "nodes" / "pve1" / "lvm" / "pve"
    return sorted(p.name for p in folder.glob(f"vm-{vmid}-disk-*")) if folder.exists() else []


@pytest.mark.parametrize(
    ("step", "vmid"),
    [(("create",), 201), (("disk", "resize"), 202), (("start",), 203)],
    ids=["during-create", "during-resize", "during-start"],
)
def test_sigkill_mid_provisioning_converges_to_one_vm(
    crash_sandbox: Sandbox, step: tuple[str, ...], vmid: int
) -> None:
    sb = crash_sandbox
    image = sb.make_image("crash", "1G")
    pattern = " ".join(("qm", *step))
    control.add_faults(sb.sim_dir, f'cmd="{pattern}" hang=3 count=1', node="pve1")
    name = f"crash-{vmid}"
    sb.apply(vm_manifest(name, vmid, image, disk={"sizeGiB": 3}))

    sb.wait_for(lambda: running_qm(*step, str(vmid)), 60, f"`{pattern} {vmid}` running on the node")
    assert sb.stop_operator(kill=True) == -9
    sb.start_operator()

    vm = wait_phase(sb, name, "Running", 90)
    assert condition(vm, "Ready")["status"] == "True"
    assert node_vmids(sb, "pve1").count(vmid) == 1
    config = node_config(sb, "pve1", vmid)
    assert config is not None
    assert "size=3G" in config["scsi0"]
    disks = {k: v for k, v in config.items() if re.fullmatch(r"(scsi|virtio|sata|ide|unused)[0-9]+", k)}
    referenced = sorted(v.split(",")[0].split(":", 1)[1] for v in disks.values() if "media=cdrom" not in v)
    assert _volumes(sb, vmid) == referenced, "an orphaned disk was left behind"

    sb.kubectl("delete", "proxmoxvm", name, "-n", "default")
    assert node_config(sb, "pve1", vmid) is None
    assert _volumes(sb, vmid) == []
