"""qm create / set / importdisk / disk import / import-from / resize over SSH (§0, §2, §4, §5, §6, §8)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pvesim.testing import SimCluster, SshNode

PROGRESS = re.compile(r"^transferred \d+\.\d (B|KiB|MiB|GiB) of 1\.0 GiB \(\d+\.\d\d%\)$")


def _upload(node: SshNode, image: Path, name: str = "img.qcow2") -> str:
    remote = f"/var/lib/vz/import/{name}"
    assert node.sftp_put(image, remote).rc == 0
    return remote


def test_create_without_disks_prints_nothing(pve1: SshNode) -> None:
    result = pve1.run("qm create 100 --name web01 --memory 2048 --cores 2")
    assert (result.rc, result.out, result.err) == (0, "", "")


def test_create_with_disks_prints_allocation_per_disk(pve1: SshNode) -> None:
    out = pve1.ok(
        "qm create 131 --scsi0 local-lvm:32,discard=on,ssd=1 --scsi1 local:1,format=qcow2 --virtio0 local:2"
    )
    assert out.splitlines() == [
        '  Logical volume "vm-131-disk-0" created.',
        "scsi0: successfully created disk 'local-lvm:vm-131-disk-0,discard=on,size=32G,ssd=1'",
        "Formatting '/var/lib/vz/images/131/vm-131-disk-0.qcow2', fmt=qcow2 cluster_size=65536 extended_l2=off "
        "preallocation=metadata compression_type=zlib size=1073741824 lazy_refcounts=off refcount_bits=16",
        "scsi1: successfully created disk 'local:131/vm-131-disk-0.qcow2,size=1G'",
        "Formatting '/var/lib/vz/images/131/vm-131-disk-1.raw', fmt=raw size=2147483648 preallocation=off",
        "virtio0: successfully created disk 'local:131/vm-131-disk-1.raw,size=2G'",
    ]
    assert "boot: order=scsi0" in pve1.ok("qm config 131")
    assert pve1.ok("ls /var/lib/vz/images/131") == "vm-131-disk-0.qcow2\nvm-131-disk-1.raw\n"
    assert "virtual size: 1 GiB" in pve1.ok("qemu-img info /var/lib/vz/images/131/vm-131-disk-0.qcow2")


@pytest.mark.parametrize(
    ("command", "stderr"),
    [
        (
            "qm create 99",
            "400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID\n"
            "\nqm create <vmid> [OPTIONS]\n",
        ),
        (
            "qm create 100 --name web_01",
            "400 Parameter verification failed.\nname: invalid format - value does not look like a valid DNS name\n"
            "\nqm create <vmid> [OPTIONS]\n",
        ),
        (
            "qm set 100 --tags 'ok;b@d'",
            "400 Parameter verification failed.\ntags: invalid format - invalid characters in tag\n"
            "\nqm set <vmid> [OPTIONS]\n",
        ),
        (
            "qm create 100 --memory 8 --cores 0",
            "400 Parameter verification failed.\ncores: value must have a minimum value of 1\n"
            "memory: invalid format - format error\nmemory.current: value must have a minimum value of 16\n"
            "\nqm create <vmid> [OPTIONS]\n",
        ),
        (
            "qm create 100 --bogus 1",
            "Unknown option: bogus\n400 unable to parse option\n\nqm create <vmid> [OPTIONS]\n",
        ),
        ("qm create", "400 not enough arguments\n\nqm create <vmid> [OPTIONS]\n"),
        ("qm list 1", "400 too many arguments\n\nqm list  [OPTIONS]\n"),
        (
            "qm create 100 --boot order=scsi0",
            "400 Parameter verification failed.\nboot: invalid bootorder: device 'scsi0' does not exist'\n"
            "\nqm create <vmid> [OPTIONS]\n",
        ),
        ("qm create 100 --scsi0 nostore:4", "storage 'nostore' does not exist\n"),
        (
            "qm create 100 --memory 512 --balloon 1024",
            "balloon value too large (must be smaller than assigned memory)\n",
        ),
    ],
)
def test_parameter_and_direct_errors(pve1: SshNode, command: str, stderr: str) -> None:
    result = pve1.run(command)
    assert (result.rc, result.out, result.err) == (255, "", stderr)
    assert pve1.ok("qm list") == ""


def test_vmid_used_on_another_node(pve1: SshNode, pve2: SshNode) -> None:
    pve1.ok("qm create 100")
    result = pve2.run("qm create 100 --scsi0 local-lvm:1")
    assert (result.rc, result.out, result.err) == (
        255,
        "",
        "unable to create VM 100 - VM 100 already exists on node 'pve1'\n",
    )
    local = pve1.run("qm create 100")
    assert local.err == "unable to create VM 100 - VM 100 already exists on node 'pve1'\n"
    assert pve2.ok("ls /var/lib/vz/images; ls /etc/pve/qemu-server") == ""


def test_failed_create_task_removes_new_volumes_and_config(pve1: SshNode) -> None:
    pve1.ok("printf 'QFI\\373garbage' > /var/lib/vz/import/broken.qcow2")
    result = pve1.run(
        "qm create 100 --scsi0 local-lvm:1 --scsi1 local-lvm:0,import-from=/var/lib/vz/import/broken.qcow2"
    )
    assert result.rc == 255
    assert result.out.startswith('  Logical volume "vm-100-disk-0" created.\n')
    assert "qemu-img info failed" in result.err
    assert "\n" not in result.err.rstrip("\n")  # task errors are one line
    assert pve1.ok("qm list; ls /etc/pve/qemu-server") == ""
    assert pve1.ok("qm create 100 --scsi0 local-lvm:1").startswith(
        '  Logical volume "vm-100-disk-0" created.'
    )


def test_create_and_start(pve1: SshNode) -> None:
    assert pve1.ok("qm create 100 --start 1") == ""
    assert pve1.ok("qm status 100") == "status: running\n"


def test_create_stores_tags_as_given_and_set_normalises(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --tags 'Web,db;web'")
    assert "tags: Web,db;web" in pve1.ok("qm config 100").splitlines()
    assert pve1.ok("qm set 100 --tags 'Web,db;web prod'") == "update VM 100: -tags Web,db;web prod\n"
    assert "tags: db;prod;web" in pve1.ok("qm config 100").splitlines()


def test_set_output_and_errors(pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    assert pve1.ok("qm set 100 --memory 4096 --cores 4 --cipassword hunter2") == (
        "update VM 100: -cipassword <hidden> -cores 4 -memory 4096\n"
    )
    assert pve1.run("qm set 100").err == "no options specified\n"
    assert (
        pve1.run("qm set 100 --digest 0000 --cores 2").err
        == "checksum mismatch (file change by other user?)\n"
    )
    assert (
        pve1.run("qm set 100 --balloon 8192").err
        == "balloon value too large (must be smaller than assigned memory)\n"
    )
    assert (
        pve1.run("qm set 999 --cores 1").err
        == "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist\n"
    )
    deleted = pve1.run("qm set 100 --delete nosuchkey")
    assert (deleted.rc, deleted.err) == (0, "cannot delete 'nosuchkey' - not set in current configuration!\n")


def test_set_with_matching_digest(pve: SimCluster, pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    digest = pve1.ok("pvesh get /nodes/pve1/qemu/100/config --output-format json").split('"digest":"')[1][:40]
    pve1.ok(f"qm set 100 --digest {digest} --cores 2")


def test_locked_vm(pve: SimCluster, pve1: SshNode) -> None:
    pve1.ok("qm create 100 --scsi0 local-lvm:1")
    pve1.ok("sed -i '1i lock: backup' /etc/pve/qemu-server/100.conf")
    assert pve1.run("qm set 100 --cores 2").err == "VM is locked (backup)\n"
    start = pve1.run("qm start 100")
    assert (start.rc, start.err) == (255, "VM is locked (backup)\n")
    assert pve1.run("qm resize 100 scsi0 +1G").err == "VM is locked (backup)\n"
    pve1.ok("qm set 100 --cores 2 --skiplock 1")
    pve1.ok("qm unlock 100")
    pve1.ok("qm start 100")


def test_sshkeys_from_a_file_are_url_encoded(pve1: SshNode) -> None:
    pve1.ok(
        "echo 'ssh-ed25519 AAAAC3Nza test@host' > /tmp/pvesim-key.pub; qm create 100 --sshkeys /tmp/pvesim-key.pub"
    )
    assert "sshkeys: ssh-ed25519%20AAAAC3Nza%20test%40host%0A" in pve1.ok("qm config 100").splitlines()


@pytest.mark.parametrize(("version", "last_line"), [
    ("8.2", "Successfully imported disk as 'unused0:local-lvm:vm-100-disk-0'"),
    ("8.3", "unused0: successfully imported disk 'local-lvm:vm-100-disk-0'"),
])  # fmt: skip
def test_importdisk_output_per_version(
    pve: SimCluster, pve1: SshNode, qcow2_image: Path, version: str, last_line: str
) -> None:
    pve.tune("pve1", pve_version=version)
    src = _upload(pve1, qcow2_image)
    pve1.ok("qm create 100")
    result = pve1.run(f"qm importdisk 100 {src} local-lvm --format qcow2")
    assert result.rc == 0
    assert result.err == "format 'qcow2' is not supported by the target storage - using 'raw' instead\n"
    lines = result.out.splitlines()
    assert lines[0] == f"importing disk '{src}' to VM 100 ..."
    assert lines[1] == '  Logical volume "vm-100-disk-0" created.'
    assert lines[2] == "transferred 0.0 B of 1.0 GiB (0.00%)"
    assert all(PROGRESS.match(line) for line in lines[2:-1]), lines
    assert lines[-3:-1] == ["transferred 1.0 GiB of 1.0 GiB (100.00%)"] * 2
    assert lines[-1] == last_line
    assert "unused0: local-lvm:vm-100-disk-0" in pve1.ok("qm config 100").splitlines()
    # `qm disk import` is the same command; disk numbers count per storage
    out = pve1.ok(f"qm disk import 100 {src} local")
    assert (
        out.splitlines()[1]
        == "Formatting '/var/lib/vz/images/100/vm-100-disk-0.raw', fmt=raw size=1073741824 preallocation=off"
    )
    assert "unused1: local:100/vm-100-disk-0.raw" in pve1.ok("qm config 100").splitlines()
    # attaching an imported volume records its size and drops the unused entry
    pve1.ok("qm set 100 --scsi0 local-lvm:vm-100-disk-0,discard=on")
    config = pve1.ok("qm config 100").splitlines()
    assert "scsi0: local-lvm:vm-100-disk-0,discard=on,size=1G" in config
    assert not any(line.startswith("unused0:") for line in config)


def test_import_checks_the_source_with_qemu_img(pve1: SshNode, qcow2_image: Path) -> None:
    pve1.ok("qm create 100")
    pve1.ok("qemu-img create -q -f raw /var/lib/vz/import/odd.raw 1000000")
    out = pve1.ok("qm importdisk 100 /var/lib/vz/import/odd.raw local")
    assert (
        out.splitlines()[1]
        == "Formatting '/var/lib/vz/images/100/vm-100-disk-0.raw', fmt=raw size=1000448 preallocation=off"
    )
    out = pve1.ok("qm importdisk 100 /var/lib/vz/import/odd.raw local-lvm")
    assert out.splitlines()[-1] == "unused1: successfully imported disk 'local-lvm:vm-100-disk-0'"
    pve1.ok("qm set 100 --scsi0 local-lvm:vm-100-disk-0")
    assert "scsi0: local-lvm:vm-100-disk-0,size=4M" in pve1.ok("qm config 100").splitlines()  # LVM extents


def test_import_errors(pve: SimCluster, pve1: SshNode, qcow2_image: Path) -> None:
    pve1.ok("qm create 100")
    src = _upload(pve1, qcow2_image)
    assert (
        pve1.run("qm importdisk 100 /nope.qcow2 local-lvm").err
        == "/nope.qcow2: non-existent or non-regular file\n"
    )
    assert pve1.run(f"qm importdisk 101 {src} local-lvm").rc == 2
    assert pve1.run(f"qm importdisk 100 {src} nostore").err == "storage 'nostore' does not exist\n"
    pve1.ok("printf 'dir: isos\\n\\tpath /var/lib/vz/template\\n\\tcontent iso\\n' >> /etc/pve/storage.cfg")
    assert pve1.run(f"qm importdisk 100 {src} isos").err == "storage isos does not support vm images\n"


def test_import_from(pve1: SshNode, qcow2_image: Path) -> None:
    src = _upload(pve1, qcow2_image)
    pve1.ok("qm create 100")
    out = pve1.ok(f"qm set 100 --scsi0 local-lvm:0,import-from={src},discard=on")
    lines = out.splitlines()
    assert lines[0] == f"update VM 100: -scsi0 local-lvm:0,import-from={src},discard=on"
    assert lines[1] == '  Logical volume "vm-100-disk-0" created.'
    assert all(PROGRESS.match(line) for line in lines[2:-1])
    assert lines[-1] == "scsi0: successfully created disk 'local-lvm:vm-100-disk-0,discard=on,size=1G'"
    assert "scsi0: local-lvm:vm-100-disk-0,discard=on,size=1G" in pve1.ok("qm config 100").splitlines()
    syntax = pve1.run(f"qm set 100 --scsi1 local-lvm:5,import-from={src}")
    assert syntax.err == (
        "400 Parameter verification failed.\n"
        "scsi1: 'import-from' requires special syntax - use <storage ID>:0,import-from=<source>\n"
        "\nqm set <vmid> [OPTIONS]\n"
    )
    out = pve1.ok(f"qm create 101 --virtio0 local:0,import-from={src},format=qcow2")
    assert (
        out.splitlines()[-1] == "virtio0: successfully created disk 'local:101/vm-101-disk-0.qcow2,size=1G'"
    )
    assert "boot: order=virtio0" in pve1.ok("qm config 101").splitlines()


def test_resize(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --scsi0 local-lvm:2 --scsi1 local:1,format=qcow2 --ide2 none,media=cdrom")
    out = pve1.ok("qm resize 100 scsi0 +1G")
    assert out == (
        "  Size of logical volume pve/vm-100-disk-0 changed from 2.00 GiB (512 extents) to 3.00 GiB (768 extents).\n"
        "  Logical volume pve/vm-100-disk-0 successfully resized.\n"
    )
    assert pve1.ok("qm disk resize 100 scsi1 1536M") == "Image resized.\n"
    config = pve1.ok("qm config 100").splitlines()
    assert "scsi0: local-lvm:vm-100-disk-0,size=3G" in config
    assert "scsi1: local:100/vm-100-disk-0.qcow2,size=1536M" in config
    assert pve1.ok("qm resize 100 scsi0 3G") == ""  # same size: no-op
    # 8.x runs resize as a task whose result qm does not check: errors show, the exit code is 0
    for command, error in [
        ("qm resize 100 scsi0 1G", "shrinking disks is not supported\n"),
        ("qm resize 100 scsi5 10G", "disk 'scsi5' does not exist\n"),
        ("qm resize 100 ide2 10G", "you can't resize a cdrom\n"),
    ]:
        result = pve1.run(command)
        assert (result.rc, result.err) == (0, error), command
    bad = pve1.run("qm resize 100 scsi0 10X")
    assert (bad.rc, bad.err.splitlines()[:2]) == (
        255,
        ["400 Parameter verification failed.", "size: value does not match the regex pattern"],
    )
    assert "scsi0: local-lvm:vm-100-disk-0,size=3G" in pve1.ok("qm config 100").splitlines()


def test_resize_fails_with_exit_code_before_8_0(pve: SimCluster, pve1: SshNode) -> None:
    pve.tune("pve1", pve_version="7.4")
    pve1.ok("qm create 100 --scsi0 local-lvm:2")
    result = pve1.run("qm resize 100 scsi0 1G")
    assert (result.rc, result.err) == (255, "shrinking disks is not supported\n")


def test_delete_detaches_disks_and_frees_unused_volumes(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --scsi0 local-lvm:1 --scsi1 local-lvm:1")
    pve1.ok("qm set 100 --delete scsi1")
    assert "unused0: local-lvm:vm-100-disk-1" in pve1.ok("qm config 100").splitlines()
    out = pve1.ok("qm set 100 --delete unused0")
    assert out == 'update VM 100: -delete unused0\n  Logical volume "vm-100-disk-1" successfully removed.\n'
    pve1.ok("qm set 100 --scsi0 local-lvm:2")  # replacing a disk keeps the old one as unused
    config = pve1.ok("qm config 100").splitlines()
    assert "scsi0: local-lvm:vm-100-disk-1,size=2G" in config
    assert "unused0: local-lvm:vm-100-disk-0" in config


def test_hotplug_on_a_running_vm(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --scsi0 local-lvm:1; qm start 100")
    pve1.ok("qm set 100 --net0 virtio,bridge=vmbr0 --scsi1 local-lvm:1 --sata0 local-lvm:1")
    current = pve1.ok("qm config 100 --current")
    assert "net0: virtio=BC:24:11:" in current
    assert "scsi1: local-lvm:vm-100-disk-1,size=1G" in current
    assert "sata0:" not in current  # SATA is not hot-pluggable
    assert "new sata0: local-lvm:vm-100-disk-2,size=1G" in pve1.ok("qm pending 100").splitlines()


def test_pve_7_macs_and_memory(pve: SimCluster, pve1: SshNode) -> None:
    pve.tune("pve1", pve_version="7.4")
    pve1.ok("qm create 100 --net0 virtio --memory 2048")
    net0 = next(line for line in pve1.ok("qm config 100").splitlines() if line.startswith("net0:"))
    assert not net0.startswith("net0: virtio=BC:24:11:")
    assert (
        pve1.run("qm create 101 --memory 8").err.splitlines()[1]
        == "memory: value must have a minimum value of 16"
    )


def test_pve_7_before_7_3_has_no_disk_subcommands_import_from_or_tag_normalisation(
    pve: SimCluster, pve1: SshNode, qcow2_image: Path
) -> None:
    pve.tune("pve1", pve_version="7.2")
    src = _upload(pve1, qcow2_image)
    pve1.ok("qm create 100 --scsi0 local-lvm:1")
    assert pve1.run(f"qm disk import 100 {src} local-lvm").err.startswith(
        "ERROR: unknown command 'qm disk'\n"
    )
    assert pve1.ok(f"qm importdisk 100 {src} local-lvm").splitlines()[-1] == (
        "Successfully imported disk as 'unused0:local-lvm:vm-100-disk-1'"
    )
    assert pve1.ok("qm resize 100 scsi0 +1G").endswith("successfully resized.\n")
    pve.tune("pve1", pve_version="7.1")  # import-from exists from 7.2 on
    rejected = pve1.run(f"qm set 100 --scsi1 local-lvm:0,import-from={src}")
    assert rejected.err.splitlines()[1:3] == [
        "scsi1: invalid format - format error",
        "scsi1.import-from: property is not defined in schema and the schema does not allow additional properties",
    ]
    pve1.ok("qm set 100 --tags 'B,a'")
    assert "tags: B,a" in pve1.ok("qm config 100").splitlines()
