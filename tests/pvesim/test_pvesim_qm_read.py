"""qm list / config / status / pending over SSH, against the facts sheet (§1, §2, §3, §8, §12)."""

from __future__ import annotations

from pvesim.testing import SimCluster, SshNode

HEADER = "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n"


def test_list_empty_prints_nothing(pve1: SshNode) -> None:
    result = pve1.run("qm list")
    assert (result.rc, result.out, result.err) == (0, "", "")


def test_list_format_default_name_sorting_and_only_local_vms(pve1: SshNode, pve2: SshNode) -> None:
    pve1.ok("qm create 101")
    pve1.ok("qm create 100 --name web01 --memory 2048 --scsi0 local-lvm:32")
    pve2.ok("qm create 200 --name elsewhere")
    assert pve1.ok("qm list") == (
        HEADER
        + "       100 web01                stopped    2048              32.00 0         \n"
        + "       101 VM 101               stopped    512                0.00 0         \n"
    )
    assert pve1.ok("qm list --full") == pve1.ok("qm list")


def test_list_running_shows_pid_and_paused_only_with_full(pve1: SshNode) -> None:
    pve1.ok(
        "qm create 100 --name a-very-long-virtual-machine-name --memory 1024; qm start 100; qm suspend 100"
    )
    line = pve1.ok("qm list").splitlines()[1]
    fields = line.split()
    assert fields[:4] == ["100", "a-very-long-virtual-machine-name", "running", "1024"]
    assert int(fields[5]) > 0
    assert line.startswith("       100 a-very-long-virtual-machine-name running    1024 ")
    assert pve1.ok("qm list --full").splitlines()[1].split()[2] == "paused"
    assert pve1.ok("qm status 100") == "status: paused\n"


def test_bootdisk_comes_from_the_boot_order(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --scsi0 local-lvm:1 --virtio0 local-lvm:3 --boot 'order=virtio0;scsi0'")
    assert pve1.ok("qm list").splitlines()[1].split()[5] == "3.00"
    pve1.ok("qm set 100 --boot order=scsi0")
    assert pve1.ok("qm list").splitlines()[1].split()[5] == "1.00"


def test_config_output(pve1: SshNode) -> None:
    pve1.ok(
        "qm create 100 --name web --memory 2048 --cores 2 --net10 e1000,bridge=vmbr1 --net2 virtio,bridge=vmbr0 "
        "--net0 virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1 --cipassword secret --ciuser admin "
        "--description 'line1: x\nline2 100%'"
    )
    lines = pve1.ok("qm config 100").splitlines()
    keys = [line.split(":", 1)[0] for line in lines]
    assert keys == sorted(keys)
    assert keys.index("net0") < keys.index("net10") < keys.index("net2")
    assert "digest" not in keys
    assert "description: line1%3A x%0Aline2 100%25" in lines
    assert "cipassword: **********" in lines
    assert "net0: virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1" in lines
    assert "boot: order=net0" in lines
    assert "memory: 2048" in lines
    raw = pve1.ok("cat /etc/pve/qemu-server/100.conf")
    assert raw.startswith("#line1%3A x\n#line2 100%25\n")
    assert "cipassword: $5$" in raw


def test_create_time_keys(pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    conf = dict(line.split(": ", 1) for line in pve1.ok("qm config 100").splitlines() if ": " in line)
    assert conf["meta"].startswith("creation-qemu=9.0.2,ctime=")
    assert conf["smbios1"].startswith("uuid=")
    assert len(conf["vmgenid"]) == 36
    assert "boot: \n" in pve1.ok("qm config 100")


def test_config_and_status_of_missing_or_remote_vms(pve1: SshNode, pve2: SshNode) -> None:
    missing = pve1.run("qm config 999")
    assert (missing.rc, missing.out, missing.err) == (
        2,
        "",
        "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist\n",
    )
    assert pve1.run("qm status 999").rc == 2
    pve2.ok("qm create 200")
    remote = pve1.run("qm status 200")
    assert remote.err == "Configuration file 'nodes/pve1/qemu-server/200.conf' does not exist\n"


def test_status_and_status_verbose(pve1: SshNode) -> None:
    pve1.ok(
        "qm create 100 --cores 2 --sockets 2 --memory 1024 --tags 'a;b' --scsi0 local-lvm:2 --net0 virtio"
    )
    assert pve1.ok("qm status 100") == "status: stopped\n"
    stopped = pve1.ok("qm status 100 --verbose")
    assert stopped == (
        "cpus: 4\ndisk: 0\ndiskread: 0\ndiskwrite: 0\nmaxdisk: 2147483648\nmaxmem: 1073741824\nmem: 0\nname: VM 100\n"
        "netin: 0\nnetout: 0\nqmpstatus: stopped\nstatus: stopped\ntags: a;b\nuptime: 0\nvmid: 100\n"
    )
    pve1.ok("qm start 100")
    running = pve1.ok("qm status 100 --verbose").splitlines()
    keys = [line.split(":")[0] for line in running if not line.startswith("\t")]
    assert keys == sorted(keys)
    assert {"pid", "balloon", "ballooninfo", "nics", "running-qemu"} <= set(keys)
    assert "status: running" in running
    assert "\tactual: 1073741824" in running
    assert "\ttap100i0:" in running
    assert "\t\tnetin: 0" in running or any(line.startswith("\t\tnetin: ") for line in running)


def test_pending_values_on_a_running_vm(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --memory 1024 --cores 1 --onboot 1 --name before; qm start 100")
    out = pve1.ok("qm set 100 --cores 4 --memory 4096 --name after --delete onboot")
    assert out == "update VM 100: -cores 4 -delete onboot -memory 4096 -name after\n"
    assert "cores: 4" in pve1.ok("qm config 100").splitlines()
    current = pve1.ok("qm config 100 --current").splitlines()
    assert "cores: 1" in current
    assert "memory: 1024" in current
    assert "name: after" in current  # applied at once
    assert "onboot: 1" not in current  # deleting onboot applies at once, too
    pending = pve1.ok("qm pending 100").splitlines()
    assert "cur cores: 1" in pending
    assert "new cores: 4" in pending
    assert "cur memory: 1024" in pending
    assert "new memory: 4096" in pending
    assert "cur name: after" in pending
    raw = pve1.ok("cat /etc/pve/qemu-server/100.conf")
    assert "\n[PENDING]\ncores: 4\nmemory: 4096\n" in raw
    # a reboot applies them
    pve1.ok("qm reboot 100")
    assert "[PENDING]" not in pve1.ok("cat /etc/pve/qemu-server/100.conf")
    assert "cores: 4" in pve1.ok("qm config 100 --current").splitlines()


def test_pending_delete_of_a_cold_option(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --cores 2 --cpu host; qm start 100; qm set 100 --delete cpu")
    assert "del cpu: host" in pve1.ok("qm pending 100").splitlines()
    assert "cpu: host" not in pve1.ok("qm config 100")
    assert "cpu: host" in pve1.ok("qm config 100 --current")
    assert "\n[PENDING]\ndelete: cpu\n" in pve1.ok("cat /etc/pve/qemu-server/100.conf")
    pve1.ok("qm stop 100; qm start 100")
    assert "cpu: host" not in pve1.ok("qm config 100 --current")


def test_stopped_vm_changes_apply_at_once(pve: SimCluster, pve1: SshNode) -> None:
    pve1.ok("qm create 100 --cores 1; qm set 100 --cores 3")
    assert "[PENDING]" not in pve1.ok("cat /etc/pve/qemu-server/100.conf")
    assert pve1.ok("qm pending 100").splitlines()[1] == "cur cores: 3"


def test_unknown_command(pve1: SshNode) -> None:
    result = pve1.run("qm frobnicate 100")
    assert result.rc == 255
    assert result.err.startswith(
        "ERROR: unknown command 'qm frobnicate'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n"
    )
    assert "       qm create <vmid> [OPTIONS]\n" in result.err


def test_config_of_a_snapshot(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --cores 2")
    pve1.ok(
        "printf 'parent: s1\\n\\n[s1]\\ncores: 1\\nsnaptime: 1700000000\\n' >> /etc/pve/qemu-server/100.conf"
    )
    assert pve1.ok("qm config 100 --snapshot s1") == "cores: 1\nsnaptime: 1700000000\n"
    assert pve1.run("qm config 100 --snapshot nope").err == "snapshot 'nope' does not exist\n"
