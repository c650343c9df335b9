"""A ProxmoxVM's life as a user drives it with kubectl: create, update in place, grow the disk, delete."""

from __future__ import annotations

from pathlib import Path

from proxnix_testbed.sandbox import Sandbox
from tests.e2e.conftest import condition, events, node_config, node_vmids, vm_manifest


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
    first = sb.wait_for(
        lambda: (o := sb.get("proxmoxvm", "reimg")) and o["status"].get("phase") == "Running" and o,
        60,
        "Running",
    )
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
