"""The renderer: flake VMs of the captured fleet → ProxmoxVM objects owned by the GitRepo."""

from __future__ import annotations

import copy

from proxnix.api.proxmoxvm import ProxmoxVMSpec
from proxnix.sources.flake.checks import node_of
from proxnix.sources.flake.render import LABEL_GITREPO, Image, Owner, render_object
from proxnix.sources.flake.vms import FlakeVM, parse_vms
from tests.flake.conftest import eval_output

OWNER = Owner(namespace="fleet", name="infra", uid="3f1c0d2e-0000-4000-8000-000000000001")
WEB = Image(path="/nix/store/2jfk83mmkmsdhs8jxx82j4492vmfs17k-web-qcow2/nixos.qcow2", sha256="a" * 64)


def test_the_users_format_renders_to_a_proxmoxvm() -> None:
    web01 = parse_vms(eval_output("fleet"))["web01"]
    obj = render_object(web01, node_of(web01, "pve1") or "", WEB, OWNER)
    assert obj["apiVersion"] == "proxnix.io/v1alpha1"
    assert obj["kind"] == "ProxmoxVM"
    assert obj["metadata"] == {
        "name": "web01",
        "namespace": "fleet",
        "labels": {LABEL_GITREPO: "infra"},
        "ownerReferences": [
            {
                "apiVersion": "proxnix.io/v1alpha1",
                "kind": "GitRepo",
                "name": "infra",
                "uid": OWNER.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    spec = obj["spec"]
    assert spec["node"] == "pve1"
    assert spec["vmid"] == 100
    assert spec["name"] == "web01"
    assert (spec["cores"], spec["sockets"], spec["memoryMiB"]) == (2, 1, 2048)
    assert spec["disk"] == {"sizeGiB": 10, "storage": "local-lvm", "slot": "scsi0"}
    assert spec["network"] == {"bridge": "vmbr0", "model": "virtio"}
    assert spec["image"] == {"source": WEB.path, "sha256": WEB.sha256}
    assert "cloudInit" not in spec
    assert spec["protected"] is False
    assert spec["scsiHardware"] == "virtio-scsi-pci"
    ProxmoxVMSpec.model_validate(spec)


def test_extensions_and_cloud_init_render() -> None:
    db01 = parse_vms(eval_output("fleet"))["db01"]
    spec = render_object(db01, node_of(db01, "pve1") or "", WEB, OWNER)["spec"]
    assert spec["node"] == "pve2"
    assert spec["runStrategy"] == "Halted"
    assert spec["deletionPolicy"] == "Retain"
    assert spec["onBoot"] is False
    assert spec["rebootForPendingChanges"] is True
    assert spec["tags"] == ["db", "tier-2"]
    assert spec["network"] == {"bridge": "vmbr1", "model": "e1000"}
    assert spec["disk"]["slot"] == "virtio0"
    assert spec["scsiHardware"] == "virtio-scsi-single"
    assert spec["cloudInit"] == {
        "storage": "local-lvm",
        "user": "ops",
        "sshAuthorizedKeys": db01.ssh_authorized_keys,
        "ipConfig": {"address": "192.0.2.10/24", "gateway": "192.0.2.1"},
    }


def test_a_cloud_init_drive_without_settings_gets_dhcp() -> None:
    web02 = parse_vms(eval_output("fleet"))["web02"]
    spec = render_object(web02, "pve1", WEB, OWNER)["spec"]
    assert spec["cloudInit"] == {
        "storage": "local-lvm",
        "sshAuthorizedKeys": [],
        "ipConfig": {"address": "dhcp"},
    }
    assert spec["protected"] is True
    assert "bridge" not in spec["network"]


def test_the_object_name_is_the_vm_name_lowercased() -> None:
    output = copy.deepcopy(eval_output("fleet"))
    output["vms"]["web01"]["name"] = "Web01"
    vm = parse_vms(output)["web01"]
    obj = render_object(vm, "pve1", WEB, OWNER)
    assert obj["metadata"]["name"] == "web01"
    assert obj["spec"]["name"] == "Web01"


# Every ProxmoxVM spec field and the flake keys that set it: a new ProxmoxVMSpec field fails this test until the
# flake format can say it too.
SPEC_FIELDS_FROM_FLAKE = {
    "node": ("node",),
    "vmid": ("vm_id",),
    "name": ("name",),
    "cores": ("cores",),
    "sockets": ("sockets",),
    "memory_mib": ("memory_mb",),
    "disk": ("disk_gb", "storage_location", "disk_slot"),
    "network": ("network_bridge", "net_model"),
    "scsi_hardware": ("scsi_hw",),
    "image": ("image_type",),
    "cloud_init": ("cloud_init", "cloud_init_user", "ssh_authorized_keys", "ip_config"),
    "on_boot": ("on_boot",),
    "tags": ("tags",),
    "protected": ("protected",),
    "run_strategy": ("run_strategy",),
    "deletion_policy": ("deletion_policy",),
    "reboot_for_pending_changes": ("reboot_for_pending_changes",),
}


def test_the_flake_format_can_say_everything_a_proxmoxvm_can() -> None:
    assert set(ProxmoxVMSpec.model_fields) == set(SPEC_FIELDS_FROM_FLAKE)
    flake_keys = {key for keys in SPEC_FIELDS_FROM_FLAKE.values() for key in keys}
    assert flake_keys == set(FlakeVM.model_fields)
