from __future__ import annotations

import pytest

from proxnix.proxmox.errors import ParseError
from proxnix.proxmox.vm_config import parse_config_json, parse_vm_config, parse_vm_config_file
from tests.proxmox.conftest import fixture_text


def test_qm_config_output() -> None:
    config = parse_vm_config(fixture_text("qm-config-web01.txt"), vmid=100)
    assert config.name == "web01"
    assert (config.cores(), config.sockets(), config.memory_mib()) == (2, 1, 2048)
    assert config.tags == ["nix-0123456789ab", "proxnix"]
    assert config.onboot is True
    assert config.protection is False
    assert config.agent_enabled is True
    assert config.boot_order == ["scsi0", "ide2", "net0"]
    assert config.boot_disk == "scsi0"
    assert config.disk_size_bytes() == 32 * 1024**3
    drive = config.drives()["scsi0"]
    assert drive.volume == "local-lvm:vm-100-disk-0"
    assert drive.storage == "local-lvm"
    assert drive.options == {"discard": "on", "iothread": "1", "size": "32G", "ssd": "1"}
    assert config.drives()["ide2"].is_cdrom
    nic = config.nics()["net0"]
    assert (nic.model, nic.mac, nic.bridge) == ("virtio", "BC:24:11:2A:3B:4C", "vmbr0")
    assert config.description.split("\n") == [
        "Managed by proxnix. Do not edit the proxnix.io lines.",
        "proxnix.io/owner: default/web01",
        "proxnix.io/uid: 6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        "proxnix.io/image-sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]
    assert config.lock == ""
    assert config.pending_keys == []


def test_percent_encoded_unicode_description_and_empty_boot() -> None:
    config = parse_vm_config(fixture_text("qm-config-unicode-description.txt"))
    assert config.description == "Café notes: 100% done\n\nsecond paragraph"
    assert config.values["boot"] == ""
    assert config.boot_order == []
    assert config.boot_disk is None
    assert config.disk_size_bytes() is None
    assert config.tags == []
    assert config.memory_mib() == 512


def test_memory_property_string_sizes_and_unused() -> None:
    config = parse_vm_config(fixture_text("qm-config-current-memory-propstring.txt"))
    assert config.memory_mib() == 4096
    assert (config.cores(), config.sockets()) == (4, 2)
    drives = config.drives()
    assert drives["virtio0"].size_bytes == 528 * 1024
    assert drives["virtio1"].size_bytes == 4 * 1024**2
    assert drives["unused0"].size_bytes is None
    assert config.boot_disk == "virtio0"
    nic = config.nics()["net0"]
    assert (nic.model, nic.mac, nic.bridge, nic.options["tag"]) == (
        "e1000",
        "52:54:00:12:34:56",
        "vmbr1",
        "20",
    )


def test_raw_conf_file_with_pending_cloudinit_and_snapshot() -> None:
    raw = fixture_text("conf-100-full.conf")
    config = parse_vm_config_file(raw, path="/etc/pve/qemu-server/100.conf", vmid=100)
    assert config.description.startswith("Managed by proxnix.")
    assert "proxnix.io/owner: prod/db-primary" in config.description.split("\n")
    assert config.values["cores"] == "2"
    assert config.pending == {"cores": "4", "memory": "8192"}
    assert config.pending_delete == ("onboot", "balloon")
    assert config.pending_keys == ["balloon", "cores", "memory", "onboot"]
    assert config.cores() == 4
    assert config.cores(pending=False) == 2
    assert config.memory_mib() == 8192
    assert config.memory_mib(pending=False) == 4096
    assert config.onboot is False  # deletion pending
    assert config.protection is True
    assert config.cloudinit == {"ipconfig0": "ip=dhcp", "name": "db-primary"}
    assert list(config.snapshots) == ["before-upgrade"]
    assert config.snapshots["before-upgrade"]["snaptime"] == "1730000000"
    assert config.values["parent"] == "before-upgrade"
    assert len(config.digest) == 40


def test_minimal_and_locked_conf() -> None:
    minimal = parse_vm_config_file(fixture_text("conf-101-minimal.conf"), path="101.conf")
    assert minimal.name == ""
    assert minimal.description == ""
    assert minimal.drives() == {}
    locked = parse_vm_config_file(fixture_text("conf-102-locked-legacy.conf"), path="102.conf")
    assert locked.lock == "backup"
    assert locked.tags == ["commit-4f2a9c1", "nix-abc123def456", "proxnix"]


def test_bad_line_is_one_parse_error_naming_it() -> None:
    with pytest.raises(ParseError) as info:
        parse_vm_config_file(fixture_text("conf-103-bad-line.conf"), path="/etc/pve/qemu-server/103.conf")
    assert info.value.line == "this line is not a config line"
    assert info.value.command == "cat /etc/pve/qemu-server/103.conf"


@pytest.mark.parametrize("text", ["cores: 1\ncores: 2\n", "[PENDING]\n[PENDING]\n", "[bad name!]\n"])
def test_malformed_structure(text: str) -> None:
    with pytest.raises(ParseError):
        parse_vm_config(text)


def test_pvesh_config_json_8x_and_7x() -> None:
    cfg8 = parse_config_json(fixture_text("pvesh-config-8.json"), command="pvesh get config")
    assert cfg8.memory_mib() == 2048
    assert cfg8.cores() == 2
    assert cfg8.onboot is True
    assert cfg8.agent_enabled is True
    assert cfg8.digest == "3f786850e387550fdab836ed7e6dc881de23001b"
    assert "proxnix.io/uid: 6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f" in cfg8.description
    cfg7 = parse_config_json(fixture_text("pvesh-config-7.json"), command="pvesh get config")
    assert cfg7.memory_mib() == 1024
    with pytest.raises(ParseError):
        parse_config_json("[1, 2]", command="pvesh get config")
    with pytest.raises(ParseError):
        parse_config_json('{"cores": [1]}', command="pvesh get config")
