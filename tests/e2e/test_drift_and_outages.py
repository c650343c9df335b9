"""The status stays true to the node: drift is corrected per runStrategy, an unreachable node makes its VMs
Unknown (never destroyed), and everything converges once the node is back."""

from __future__ import annotations

from pathlib import Path

from proxnix_testbed.sandbox import Sandbox
from pvesim import control
from tests.e2e.conftest import condition, events, node_config, node_vmids, vm_manifest, wait_phase


def _phase(sb: Sandbox, name: str) -> str:
    obj = sb.get("proxmoxvm", name)
    return str(obj["status"].get("phase", "")) if obj else ""


def _power(sb: Sandbox, node: str, vmid: int) -> str:
    return sb.ssh(node, f"qm status {vmid}").out.strip()


def test_stopped_vm_with_run_strategy_always_is_started_again(sandbox: Sandbox, image: Path) -> None:
    sb = sandbox
    sb.apply(vm_manifest("keepup", 141, image))
    sb.wait_for(lambda: _phase(sb, "keepup") == "Running", 60, "Running")
    # (no check of the stopped state here: a resync may start it again at once; the drift Event proves it ran)
    assert sb.ssh("pve1", "qm stop 141").rc == 0
    sb.wait_for(
        lambda: _power(sb, "pve1", 141) == "status: running", 30, "VM 141 started again by the resync"
    )
    sb.wait_for(
        lambda: any(e["reason"] == "Started" and "drift" in e["message"] for e in events(sb, "keepup")),
        15,
        "a drift Event",
    )
    sb.kubectl("delete", "proxmoxvm", "keepup", "-n", "default")


def test_halted_vm_is_stopped_and_manual_vm_only_reported(sandbox: Sandbox, image: Path) -> None:
    sb = sandbox
    sb.apply(vm_manifest("halted", 142, image, runStrategy="Halted"))
    sb.apply(vm_manifest("manual", 143, image, runStrategy="Manual"))
    sb.wait_for(lambda: _phase(sb, "halted") == "Stopped", 60, "halted Stopped")
    sb.wait_for(lambda: _phase(sb, "manual") == "Stopped", 60, "manual Stopped")

    assert sb.ssh("pve1", "qm start 142").rc == 0
    assert sb.ssh("pve1", "qm start 143").rc == 0
    sb.wait_for(lambda: _power(sb, "pve1", 142) == "status: stopped", 30, "VM 142 stopped by the resync")
    sb.wait_for(
        lambda: any(
            e["reason"] in ("ShutDown", "Stopped") and "drift" in e["message"] for e in events(sb, "halted")
        ),
        15,
        "a drift Event for the halted VM",
    )
    # Manual: the operator reports the new power state and leaves it.
    sb.wait_for(lambda: _phase(sb, "manual") == "Running", 30, "manual reported Running")
    assert _power(sb, "pve1", 143) == "status: running"
    for name in ("halted", "manual"):
        sb.kubectl("delete", "proxmoxvm", name, "-n", "default")


def test_unreachable_node_marks_vms_unknown_and_destroys_nothing(sandbox: Sandbox, image: Path) -> None:
    sb = sandbox
    sb.apply(vm_manifest("remote", 151, image, node="pve2"))
    sb.wait_for(lambda: _phase(sb, "remote") == "Running", 60, "Running on pve2")
    before = node_config(sb, "pve2", 151)
    control.set_node_down(sb.sim_dir, "pve2", True)
    try:
        vm = wait_phase(sb, "remote", "Unknown", 40)
        assert condition(vm, "Ready")["status"] == "Unknown"
        assert condition(vm, "Ready")["reason"] == "NodeUnreachable"
        node = sb.wait_for(
            lambda: (
                (o := sb.get("proxmoxnode", "pve2")) and condition(o, "Ready").get("status") == "False" and o
            ),
            30,
            "pve2 not Ready",
        )
        assert condition(node, "NodeReachable")["status"] == "False"

        # Deleting the object while the node is down must not lose the VM: the finalizer waits.
        sb.kubectl("delete", "proxmoxvm", "remote", "-n", "default", "--wait=false")
        sb.wait_for(
            lambda: (o := sb.get("proxmoxvm", "remote")) and o["metadata"].get("deletionTimestamp"),
            10,
            "deleting",
        )
    finally:
        control.set_node_down(sb.sim_dir, "pve2", False)
    # Back: the deletion completes on the node, exactly once.
    sb.wait_for(lambda: sb.get("proxmoxvm", "remote") is None, 60, "object gone after the node came back")
    assert before is not None
    assert 151 not in node_vmids(sb, "pve2")
