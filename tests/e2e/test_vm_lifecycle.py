"""A ProxmoxVM's life as a user drives it with kubectl: create, update in place, grow the disk, delete."""

from __future__ import annotations

from pathlib import Path

from proxnix_testbed.sandbox import Sandbox
from pvesim import control
from tests.e2e.conftest import (
    condition,
    crd_rule_removed,
    events,
    node_config,
    node_vmids,
    vm_manifest,
    wait_phase,
)


def test_vm_created_updated_resized_and_destroyed(sandbox: Sandbox, image: Path) -> None:
    sb = sandbox
    sb.apply(vm_manifest("web01", 101, image, memoryMiB=1024))

    vm = sb.wait_for(
        lambda: (
            (o := sb.get("proxmoxvm", "web01"))
            and o["status"].get("phase") == "Running"
            and o["status"].get("ipAddresses")
            and o
        ),
        60,
        "web01 Running with an IP",
    )
    assert condition(vm, "Ready")["status"] == "True"
    assert condition(vm, "Provisioned")["status"] == "True"
    config = node_config(sb, "pve1", 101)
    assert config is not None
    assert config["memory"] == "1024"
    assert config["name"] == "web01"
    assert "proxnix" in config["tags"].split(";")

    table = sb.kubectl("get", "proxmoxvms", "-n", "default", "-o", "wide").out
    row = next(line for line in table.splitlines() if line.startswith("web01"))
    assert "Running" in row
    assert vm["status"]["ipAddresses"][0] in row
    assert vm["status"]["imageShort"] in row

    # Memory: the same VMID is updated in place; on a running VM the change waits for a restart.
    sb.kubectl("patch", "proxmoxvm", "web01", "--type", "merge", "-p", '{"spec":{"memoryMiB":2048}}')
    sb.wait_for(
        lambda: (c := node_config(sb, "pve1", 101)) and c["memory"] == "2048", 30, "memory 2048 on pve1"
    )
    vm = sb.wait_for(
        lambda: (
            (o := sb.get("proxmoxvm", "web01"))
            and condition(o, "RestartRequired").get("status") == "True"
            and o
        ),
        30,
        "RestartRequired",
    )
    assert "memory" in condition(vm, "RestartRequired")["message"]
    assert node_vmids(sb, "pve1").count(101) == 1

    # Disk: growing it resizes in place (never a new VM).
    sb.kubectl("patch", "proxmoxvm", "web01", "--type", "merge", "-p", '{"spec":{"disk":{"sizeGiB":5}}}')
    sb.wait_for(
        lambda: (c := node_config(sb, "pve1", 101)) and "size=5G" in c["scsi0"], 30, "scsi0 grown to 5G"
    )
    sb.wait_for(
        lambda: {"Created", "Started", "Updated", "Resized"} <= {e["reason"] for e in events(sb, "web01")},
        15,
        "an Event for every action",
    )

    # Delete: the VM is destroyed on the node, then the object goes.
    sb.kubectl("delete", "proxmoxvm", "web01", "-n", "default", "--wait=false")
    sb.wait_for(lambda: sb.get("proxmoxvm", "web01") is None, 30, "web01 object gone")
    assert node_config(sb, "pve1", 101) is None
    assert 101 not in node_vmids(sb, "pve1")


def test_image_change_reimages_an_unprotected_vm(sandbox: Sandbox, image: Path, other_image: Path) -> None:
    sb = sandbox
    sb.apply(vm_manifest("reimg", 102, image))
    first = wait_phase(sb, "reimg", "Running", 60)
    sb.apply(vm_manifest("reimg", 102, other_image))
    second = sb.wait_for(
        lambda: (
            (o := sb.get("proxmoxvm", "reimg"))
            and o["status"].get("imageSha256") not in ("", first["status"]["imageSha256"])
            and o["status"].get("phase") == "Running"
            and o
        ),
        60,
        "reimaged and Running",
    )
    assert second["status"]["vmid"] == 102
    assert node_vmids(sb, "pve1").count(102) == 1
    sb.wait_for(lambda: "Destroyed" in {e["reason"] for e in events(sb, "reimg")}, 15, "a Destroyed Event")
    sb.kubectl("delete", "proxmoxvm", "reimg", "-n", "default")
    assert node_config(sb, "pve1", 102) is None


def test_changing_the_vmid_of_a_provisioned_vm_is_refused(sandbox: Sandbox, image: Path) -> None:
    sb = sandbox
    sb.apply(vm_manifest("renum", 105, image))
    wait_phase(sb, "renum", "Running", 60)
    # The API server refuses it (the CRD's CEL rule self == oldSelf) ...
    renumber = ("patch", "proxmoxvm", "renum", "--type", "merge", "-p", '{"spec":{"vmid":106}}')
    refused = sb.kubectl(*renumber, check=False)
    assert refused.rc != 0
    assert "vmid cannot be changed" in refused.err
    # ... and where the rule is missing (a CRD from before it), the operator refuses it as a second line.
    with crd_rule_removed(sb, "vmid"):
        sb.wait_for(
            lambda: sb.kubectl(*renumber, check=False).rc == 0, 30, "the patch accepted without the rule"
        )
    vm = sb.wait_for(
        lambda: (
            (o := sb.get("proxmoxvm", "renum"))
            and condition(o, "Stalled").get("reason") == "ImmutableField"
            and o
        ),
        30,
        "Stalled ImmutableField",
    )
    assert vm["status"]["vmid"] == 105
    assert node_config(sb, "pve1", 106) is None
    assert node_config(sb, "pve1", 105) is not None
    # Deleting destroys the VM the object made (105), not the one the spec names now.
    sb.kubectl("delete", "proxmoxvm", "renum", "-n", "default")
    assert node_config(sb, "pve1", 105) is None


def test_pending_changes_reboot_when_the_spec_asks_for_it(sandbox: Sandbox, image: Path) -> None:
    sb = sandbox
    sb.apply(vm_manifest("rebooter", 107, image, rebootForPendingChanges=True))
    wait_phase(sb, "rebooter", "Running", 60)
    sb.kubectl("patch", "proxmoxvm", "rebooter", "--type", "merge", "-p", '{"spec":{"cores":2}}')
    sb.wait_for(
        lambda: any(e["reason"] == "Rebooted" for e in events(sb, "rebooter")), 30, "a Rebooted Event"
    )
    # After the reboot the change is in effect: nothing pending, and the VM runs.
    assert sb.ssh("pve1", "qm pending 107").rc == 0
    current = sb.ssh("pve1", "qm config 107 --current").out
    assert "cores: 2" in current
    vm = sb.wait_for(
        lambda: (
            (o := sb.get("proxmoxvm", "rebooter"))
            and condition(o, "RestartRequired").get("status") == "False"
            and o["status"].get("phase") == "Running"
            and o
        ),
        30,
        "no restart required",
    )
    assert vm["status"]["observed"]["cores"] == 2
    sb.kubectl("delete", "proxmoxvm", "rebooter", "-n", "default")


def test_progress_shows_while_a_slow_create_runs(sandbox: Sandbox, image: Path) -> None:
    sb = sandbox
    control.add_faults(sb.sim_dir, 'cmd="qm create 108" hang=4 count=1', node="pve1")
    sb.apply(vm_manifest("slow", 108, image))
    vm = wait_phase(sb, "slow", "Provisioning", 20)
    assert condition(vm, "Reconciling")["status"] == "True"
    assert "create VM 108" in condition(vm, "Reconciling")["message"]
    wait_phase(sb, "slow", "Running", 60)
    sb.kubectl("delete", "proxmoxvm", "slow", "-n", "default")


def test_metrics_count_what_the_operator_did(sandbox: Sandbox, image: Path) -> None:
    """`curl /metrics` on the running sandbox: after a VM was created, its reconciles, the `qm create` on its node,
    the image upload and the VM's phase are all counted."""
    import re
    import urllib.request

    sb = sandbox
    sb.apply(vm_manifest("metered", 131, image))
    wait_phase(sb, "metered", "Running", 60)

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{sb.metrics_port}/metrics", timeout=5) as rsp:
            text = rsp.read().decode()
        return {
            m.group(1): float(m.group(2))
            for m in re.finditer(r"^(proxnix_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", text, re.MULTILINE)
        }

    samples = sb.wait_for(
        lambda: (s := scrape()) and s.get('proxnix_vms{phase="Running"}', 0) >= 1 and s, 30, "VMs by phase"
    )
    reconciles = [
        v for k, v in samples.items() if k.startswith('proxnix_reconciles_total{handler="reconcile"')
    ]
    assert sum(reconciles) >= 1
    creates = [
        v
        for k, v in samples.items()
        if k.startswith("proxnix_node_commands_total") and 'command="qm create"' in k
    ]
    assert sum(creates) >= 1, sorted(
        k for k in samples if k.startswith("proxnix_node_commands")
    )  # label values have spaces
    uploads = [v for k, v in samples.items() if k.startswith("proxnix_image_upload_bytes_total")]
    assert sum(uploads) > 0
    assert any(k.startswith("proxnix_node_ssh_sessions_in_use") for k in samples)
    assert any(k.startswith("proxnix_node_command_duration_seconds_bucket") for k in samples)
