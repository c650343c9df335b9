from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.api.proxmoxvm import ProxmoxVMSpec
from proxnix.proxmox import commands as c
from proxnix.proxmox.definition import definition_from_spec
from proxnix.proxmox.ownership import Owner
from proxnix.proxmox.shell import shell_join
from proxnix.proxmox.vm_config import parse_vm_config

SHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
OWNER = Owner(namespace="default", name="web01", uid="6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f")


def node_spec() -> ProxmoxNodeSpec:
    return ProxmoxNodeSpec.model_validate(
        {"host": "pve1.example", "credentialsSecretRef": {"name": "pve1-ssh"}}
    )


def vm_spec(**extra: object) -> ProxmoxVMSpec:
    data: dict[str, object] = {
        "node": "pve1",
        "vmid": 100,
        "image": {"source": "/nix/store/x-nixos/nixos.qcow2"},
    }
    data.update(extra)
    return ProxmoxVMSpec.model_validate(data)


def options(argv: list[str]) -> dict[str, str]:
    """`--key value` pairs of an argv."""
    return {argv[i][2:]: argv[i + 1] for i in range(len(argv)) if argv[i].startswith("--")}


def test_create_has_marker_agent_serial_and_shape() -> None:
    spec = vm_spec(cores=2, sockets=2, memoryMiB=4096, tags=["web", "prod"], protected=True)
    definition = definition_from_spec(spec, node_spec(), "web01")
    argv = c.create_vm(definition, OWNER, image_sha256=SHA, import_from="/var/lib/vz/proxnix/images/x.qcow2")
    assert argv[:3] == ["qm", "create", "100"]
    opts = options(argv)
    assert opts["name"] == "web01"
    assert (opts["memory"], opts["cores"], opts["sockets"]) == ("4096", "2", "2")
    assert opts["agent"] == "1"
    assert opts["serial0"] == "socket"
    assert opts["scsihw"] == "virtio-scsi-pci"
    assert opts["net0"] == "virtio,bridge=vmbr0"
    assert (opts["onboot"], opts["protection"]) == ("1", "1")
    assert opts["tags"] == "nix-0123456789ab;prod;proxnix;web"
    assert opts["scsi0"] == "local-lvm:0,import-from=/var/lib/vz/proxnix/images/x.qcow2"
    assert opts["boot"] == "order=scsi0"
    assert "proxnix.io/uid: 6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f" in opts["description"].split("\n")
    # The remote shell sees exactly these arguments back.
    assert shlex.split(shell_join(argv)) == argv


def test_create_with_cloud_init_and_defaults() -> None:
    spec = vm_spec(
        disk={"storage": "fast", "slot": "virtio0"},
        network={"bridge": "vmbr9", "model": "e1000"},
        cloudInit={
            "user": "ops",
            "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3Nza ops@laptop"],
            "ipConfig": {"address": "192.0.2.10/24", "gateway": "192.0.2.1"},
        },
        onBoot=False,
    )
    definition = definition_from_spec(spec, node_spec(), "db")
    argv = c.create_vm(definition, OWNER, sshkeys_path="/dev/stdin")
    opts = options(argv)
    assert opts["name"] == "db"
    assert opts["net0"] == "e1000,bridge=vmbr9"
    assert opts["onboot"] == "0"
    assert opts["ide2"] == "local-lvm:cloudinit"
    assert opts["ipconfig0"] == "ip=192.0.2.10/24,gw=192.0.2.1"
    assert opts["ciuser"] == "ops"
    assert opts["sshkeys"] == "/dev/stdin"
    assert opts["tags"] == "proxnix"
    assert "virtio0" not in opts
    assert "boot" not in opts


def test_builders() -> None:
    assert c.qm_list() == ["qm", "list"]
    assert c.qm_config(100, current=True) == ["qm", "config", "100", "--current", "1"]
    assert c.qm_status(100) == ["qm", "status", "100", "--verbose", "1"]
    assert c.qm_pending(100) == ["qm", "pending", "100"]
    assert c.set_options(100, {"memory": 4096, "cores": 4, "onboot": False}, delete=["balloon"]) == [
        "qm", "set", "100", "--cores", "4", "--memory", "4096", "--onboot", "0", "--delete", "balloon",
    ]  # fmt: skip
    assert c.set_tags(100, ["Proxnix", "web", "web"]) == ["qm", "set", "100", "--tags", "proxnix;web"]
    assert c.set_protection(100, True) == ["qm", "set", "100", "--protection", "1"]
    assert c.import_disk(100, "/var/lib/vz/i/x.qcow2", "local-lvm") == [
        "qm", "disk", "import", "100", "/var/lib/vz/i/x.qcow2", "local-lvm",
    ]  # fmt: skip
    assert c.import_disk(100, "/i/x.raw", "local", image_format="qcow2", legacy=True) == [
        "qm", "importdisk", "100", "/i/x.raw", "local", "--format", "qcow2",
    ]  # fmt: skip
    assert c.import_from(100, "scsi0", "local-lvm", "/i/x.qcow2") == [
        "qm", "set", "100", "--boot", "order=scsi0", "--scsi0", "local-lvm:0,import-from=/i/x.qcow2",
    ]  # fmt: skip
    assert c.attach_disk(100, "scsi0", "local-lvm:vm-100-disk-0") == [
        "qm", "set", "100", "--boot", "order=scsi0", "--scsi0", "local-lvm:vm-100-disk-0",
    ]  # fmt: skip
    assert c.resize_disk(100, "scsi0", 40) == ["qm", "disk", "resize", "100", "scsi0", "40G"]
    assert c.resize_disk(100, "scsi0", 40, legacy=True) == ["qm", "resize", "100", "scsi0", "40G"]
    assert c.start_vm(100) == ["qm", "start", "100"]
    assert c.stop_vm(100) == ["qm", "stop", "100"]
    assert c.shutdown_vm(100, timeout_s=30, force_stop=True) == [
        "qm", "shutdown", "100", "--timeout", "30", "--forceStop", "1",
    ]  # fmt: skip
    assert c.reboot_vm(100) == ["qm", "reboot", "100"]
    assert c.destroy_vm(100) == ["qm", "destroy", "100", "--purge", "1", "--destroy-unreferenced-disks", "1"]
    assert c.guest_network_interfaces(100) == ["qm", "guest", "cmd", "100", "network-get-interfaces"]
    assert c.cluster_resources() == [
        "pvesh",
        "get",
        "/cluster/resources",
        "--type",
        "vm",
        "--output-format",
        "json",
    ]
    assert c.vm_config_json("pve1", 100) == [
        "pvesh",
        "get",
        "/nodes/pve1/qemu/100/config",
        "--output-format",
        "json",
    ]
    assert c.next_vmid()[2] == "/cluster/nextid"


@pytest.mark.parametrize(
    "call",
    [
        lambda: c.start_vm(99),
        lambda: c.start_vm(True),  # type: ignore[arg-type]
        lambda: c.start_vm("100"),  # type: ignore[arg-type]
        lambda: c.start_vm(1_000_000_000),
        lambda: c.resize_disk(100, "scsi0; rm -rf /", 4),
        lambda: c.resize_disk(100, "scsi0", 0),
        lambda: c.import_disk(100, "/tmp/../etc/shadow", "local"),
        lambda: c.import_disk(100, "relative.qcow2", "local"),
        lambda: c.import_disk(100, "/x.qcow2", "local; reboot"),
        lambda: c.import_disk(100, "/x.qcow2", "local", image_format="iso"),
        lambda: c.set_options(100, {}),
        lambda: c.set_options(100, {"cores; reboot": 1}),
        lambda: c.set_options(100, {"name": "a\nb"}),
        lambda: c.set_options(100, {"cores": -1}),
        lambda: c.set_tags(100, ["Bad Tag"]),
        lambda: c.vm_config_json("pve1/../x", 100),
        lambda: c.attach_disk(100, "scsi0", "not a volume"),
    ],
)
def test_builders_refuse_bad_values(call: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        call()  # type: ignore[operator]


def test_shell_join_rejects_nul_and_empty() -> None:
    with pytest.raises(ValueError, match="empty command"):
        shell_join([])
    with pytest.raises(ValueError, match="NUL"):
        shell_join(["echo", "a\x00b"])


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=40), min_size=1, max_size=6
    )
)
def test_shell_join_round_trips_any_text(parts: list[str]) -> None:
    assert shlex.split(shell_join(parts)) == parts


def test_description_round_trips_through_qm_config_encoding() -> None:
    definition = definition_from_spec(vm_spec(), node_spec(), "web01")
    description = options(c.create_vm(definition, OWNER, image_sha256=SHA))["description"]
    encoded = description.replace("%", "%25").replace(":", "%3A").replace("\n", "%0A")
    parsed = parse_vm_config(f"description: {encoded}\nname: web01\n")
    assert parsed.description == description
