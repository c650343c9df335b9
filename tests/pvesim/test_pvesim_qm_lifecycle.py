"""Power, destroy, guest agent and migration over SSH (§0, §7, §9, §12)."""

from __future__ import annotations

import json
import time

import pytest

from pvesim.testing import SimCluster, SshNode


def test_start_stop(pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    assert pve1.run("qm start 100").out == ""
    assert pve1.ok("qm status 100") == "status: running\n"
    again = pve1.run("qm start 100")
    assert (again.rc, again.out, again.err) == (255, "", "VM 100 already running\n")
    assert pve1.run("qm stop 100").out == ""
    assert pve1.ok("qm status 100") == "status: stopped\n"
    silent = pve1.run("qm stop 100")
    assert (silent.rc, silent.out, silent.err) == (0, "", "")


def test_start_errors(pve1: SshNode, pve2: SshNode) -> None:
    missing = pve1.run("qm start 999")
    assert (missing.rc, missing.err) == (
        255,
        "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist\n",
    )
    pve2.ok("qm create 200")
    assert (
        pve1.run("qm start 200").err
        == "Configuration file 'nodes/pve1/qemu-server/200.conf' does not exist\n"
    )
    pve1.ok("qm create 100 --template 1")
    assert pve1.run("qm start 100").err == "you can't start a vm if it's a template\n"
    pve1.ok("qm create 101 --scsi0 local:1; rm /var/lib/vz/images/101/vm-101-disk-0.raw")
    gone = pve1.run("qm start 101")
    assert (gone.rc, gone.err) == (255, "volume 'local:101/vm-101-disk-0.raw' does not exist\n")
    assert pve1.ok("qm status 101") == "status: stopped\n"


def test_stop_and_shutdown_of_missing_vms(pve1: SshNode, pve2: SshNode) -> None:
    pve2.ok("qm create 200")
    for command in ("qm stop 999", "qm shutdown 999"):
        assert pve1.run(command).err == "unable to find configuration file for VM 999 on node 'pve1'\n"
    assert pve1.run("qm stop 200").err == "unable to find configuration file for VM 200 on node 'pve1'\n"


def test_shutdown(pve: SimCluster, pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    stopped = pve1.run("qm shutdown 100")
    assert (stopped.rc, stopped.out, stopped.err) == (0, "", "VM 100 not running\n")
    pve1.ok("qm start 100")
    assert pve1.run("qm shutdown 100").out == ""
    assert pve1.ok("qm status 100") == "status: stopped\n"
    pve1.ok("qm start 100; qm suspend 100")
    paused = pve1.run("qm shutdown 100")
    assert (paused.rc, paused.err) == (255, "VM is paused - cannot shutdown\n")
    pve1.ok("qm resume 100")
    # a guest that ignores ACPI
    pve.add_faults('cmd="qm shutdown" noacpi', node="pve1")
    started = time.monotonic()
    timeout = pve1.run("qm shutdown 100 --timeout 1")
    assert time.monotonic() - started >= 1.0
    assert (timeout.rc, timeout.err) == (255, "VM quit/powerdown failed - got timeout\n")
    assert pve1.ok("qm status 100") == "status: running\n"
    forced = pve1.run("qm shutdown 100 --timeout 1 --forceStop 1")
    assert (forced.rc, forced.out) == (0, "VM still running - terminating now with SIGTERM\n")
    assert pve1.ok("qm status 100") == "status: stopped\n"


def test_reboot(pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    assert pve1.run("qm reboot 100").err == "VM 100 not running\n"
    pve1.ok("qm start 100")
    pid = pve1.ok("qm status 100 --verbose").split("pid: ")[1].split()[0]
    pve1.ok("qm set 100 --cores 3")
    pve1.ok("qm reboot 100")
    verbose = pve1.ok("qm status 100 --verbose")
    assert "status: running" in verbose
    assert verbose.split("pid: ")[1].split()[0] != pid
    assert "cores: 3" in pve1.ok("qm config 100 --current").splitlines()


def test_cloud_init_start(pve1: SshNode) -> None:
    out = pve1.ok("qm create 100 --ide2 local-lvm:cloudinit --ciuser admin --ipconfig0 ip=dhcp")
    assert out.splitlines() == [
        '  Logical volume "vm-100-cloudinit" created.',
        "ide2: successfully created disk 'local-lvm:vm-100-cloudinit,media=cdrom'",
    ]
    assert pve1.ok("qm start 100") == "generating cloud-init ISO\n"
    assert "\n[special:cloudinit]\nciuser: admin\nipconfig0: ip=dhcp\n" in pve1.ok(
        "cat /etc/pve/qemu-server/100.conf"
    )


def test_destroy(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --scsi0 local-lvm:1 --scsi1 local:1 --protection 1")
    protected = pve1.run("qm destroy 100")
    assert (protected.rc, protected.err) == (255, "can't remove VM 100 - protection mode enabled\n")
    pve1.ok("qm set 100 --protection 0; qm start 100")
    running = pve1.run("qm destroy 100")
    assert (running.rc, running.err) == (255, "VM 100 is running - destroy failed\n")
    pve1.ok("qm stop 100")
    assert pve1.ok("qm destroy 100 --purge") == (
        '  Logical volume "vm-100-disk-0" successfully removed.\npurging VM 100 from related configurations..\n'
    )
    assert pve1.ok("qm list; ls /var/lib/vz/images") == ""
    assert (
        pve1.run("qm destroy 100").err
        == "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist\n"
    )


def test_destroy_unreferenced_disks(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --scsi0 local-lvm:1 --scsi1 local-lvm:1; qm set 100 --delete scsi1")
    pve1.ok("sed -i '/^unused0/d' /etc/pve/qemu-server/100.conf")  # an orphan volume owned by VM 100
    pve1.ok("qm create 101 --scsi0 local-lvm:1")
    assert pve1.ok("qm destroy 100") == '  Logical volume "vm-100-disk-0" successfully removed.\n'
    pve1.ok("qm create 100")
    assert pve1.ok("qm destroy 100 --destroy-unreferenced-disks 1") == (
        '  Logical volume "vm-100-disk-1" successfully removed.\n'
    )
    assert "scsi0: local-lvm:vm-101-disk-0,size=1G" in pve1.ok("qm config 101")


def test_create_placeholder_is_locked_while_the_task_runs(pve: SimCluster, pve1: SshNode) -> None:
    pve.add_faults('cmd="qm create" slow=2 count=1', node="pve1")  # the create task takes 2 s
    create = pve1.popen("qm create 100 --name placeholder")
    deadline = time.monotonic() + 20
    seen = ""
    while time.monotonic() < deadline and "lock: create" not in seen:
        seen = pve1.run("qm config 100").out
    assert seen == "lock: create\n"
    assert create.wait(timeout=30) == 0
    config = pve1.ok("qm config 100")
    assert "lock" not in config
    assert "name: placeholder" in config


def test_guest_agent(pve: SimCluster, pve1: SshNode) -> None:
    pve1.ok("qm create 100 --net0 virtio=BC:24:11:AA:BB:CC,bridge=vmbr0")
    assert pve1.run("qm guest cmd 100 network-get-interfaces").err == "No QEMU guest agent configured\n"
    pve1.ok("qm set 100 --agent enabled=1")
    assert pve1.run("qm guest cmd 100 network-get-interfaces").err == "VM 100 is not running\n"
    pve.tune("pve1", agent_delay=1.0)
    pve1.ok("qm start 100")
    early = pve1.run("qm agent 100 network-get-interfaces")
    assert (early.rc, early.err) == (255, "QEMU guest agent is not running\n")
    deadline = time.monotonic() + 10
    result = pve1.run("qm guest cmd 100 network-get-interfaces")
    while result.rc != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        result = pve1.run("qm guest cmd 100 network-get-interfaces")
    assert result.rc == 0, result.err
    assert result.out.startswith('[\n   {\n      "hardware-address" : "00:00:00:00:00:00",\n')
    interfaces = json.loads(result.out)
    ens18 = interfaces[1]
    assert ens18["hardware-address"] == "bc:24:11:aa:bb:cc"
    assert ens18["ip-addresses"][0] == {"ip-address": "10.1.0.102", "ip-address-type": "ipv4", "prefix": 24}
    pve1.ok("qm set 100 --ipconfig0 ip=192.168.7.10/24,gw=192.168.7.1")
    interfaces = json.loads(pve1.ok("qm guest cmd 100 network-get-interfaces"))
    assert interfaces[1]["ip-addresses"][0]["ip-address"] == "192.168.7.10"
    pve.add_faults("noagent count=1", node="pve1")
    assert pve1.run("qm guest cmd 100 network-get-interfaces").err == "QEMU guest agent is not running\n"
    bad = pve1.run("qm guest cmd 100 bogus")
    assert bad.err.startswith(
        "400 Parameter verification failed.\ncommand: value 'bogus' does not have a value"
    )


def test_migrate(pve: SimCluster, pve1: SshNode, pve2: SshNode) -> None:
    pve1.ok("qm create 100 --name mover --scsi0 local-lvm:1 --virtio0 local:1")
    local = pve1.run("qm migrate 100 pve1")
    assert (local.rc, local.err) == (
        255,
        "400 Parameter verification failed.\ntarget: target is local node.\n\nqm migrate <vmid> <target> [OPTIONS]\n",
    )
    assert pve1.run("qm migrate 100 pve9").err == "no such cluster node 'pve9'\n"
    pve1.ok("qm start 100")
    assert pve1.run("qm migrate 100 pve2").err == "can't migrate running VM without --online\n"
    assert pve1.run("qm migrate 100 pve2 --online").err == (
        "can't live migrate attached local disks without with-local-disks option\n"
    )
    out = pve1.ok("qm migrate 100 pve2 --online --with-local-disks")
    assert "starting migration of VM 100 to node 'pve2'" in out
    assert out.splitlines()[-1].endswith("migration finished successfully (duration 00:00:00)")
    assert pve1.ok("qm list") == ""
    listing = pve2.ok("qm list").splitlines()[1].split()
    assert listing[:3] == ["100", "mover", "running"]
    assert pve2.ok("ls /var/lib/vz/images/100") == "vm-100-disk-0.raw\n"
    pve2.ok("qm stop 100; qm migrate 100 pve1")
    assert pve1.ok("qm status 100") == "status: stopped\n"
    assert pve1.ok("qm destroy 100").count("successfully removed") == 1


@pytest.mark.parametrize(
    "command", ["qm create 100", "qm start 100", "qm set 100 --cores 2", "qm destroy 100"]
)
def test_no_quorum(pve: SimCluster, pve1: SshNode, command: str) -> None:
    pve1.ok("qm create 100" if command != "qm create 100" else "true")
    pve.add_faults("noquorum", node="pve1")
    result = pve1.run(command)
    assert (result.rc, result.err) == (255, "cluster not ready - no quorum?\n")
