"""The SSH side: `pvesim up`/`down` from the command line, host-key checking, key-only auth, what a session
sees (paths of a real node, shell semantics), SFTP into the node's own /var/lib/vz, and the call logs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pvesim import calllog
from pvesim.control import ClusterInfo
from pvesim.testing import SimCluster, SshNode

PVESIM = str(Path(sys.executable).parent / "pvesim")


def _plain_ssh(
    node: dict[str, str], command: str, known_hosts: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh", "-i", node["identityFile"],
            "-o", f"UserKnownHostsFile={known_hosts or node['knownHostsFile']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-p", str(node["port"]), f"{node['user']}@127.0.0.1", command,
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_acceptance_up_ssh_create_twice_down(tmp_path: Path) -> None:
    state = tmp_path / "x"
    up = subprocess.run(
        [
            PVESIM,
            "up",
            "--nodes",
            "2",
            "--dir",
            str(state),
            "--pve-version",
            "pve2=8.2",
            "--faults",
            "cmd=pvesh fail=boom count=1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    try:
        doc = json.loads(up.stdout)  # exactly one JSON document
        assert doc["dir"] == str(state)
        assert [n["name"] for n in doc["nodes"]] == ["pve1", "pve2"]
        for node in doc["nodes"]:
            assert set(node) == {"name", "host", "port", "user", "identityFile", "knownHostsFile"}
            assert node["host"] == "127.0.0.1"
            assert node["port"] > 1024
        node1, node2 = doc["nodes"]
        assert node1["port"] != node2["port"]

        listing = _plain_ssh(node1, "qm list")
        assert (listing.returncode, listing.stdout, listing.stderr) == (0, "", "")

        assert _plain_ssh(node1, "qm create 100").returncode == 0
        again = _plain_ssh(node2, "qm create 100")
        assert again.returncode != 0
        assert again.stderr == "unable to create VM 100 - VM 100 already exists on node 'pve1'\n"
        listing = _plain_ssh(node1, "qm list")
        assert listing.stdout == (
            "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n"
            "       100 VM 100               stopped    512                0.00 0         \n"
        )
        faulted = _plain_ssh(
            node2, "pvesh get /version --output-format json; pvesh get /version --output-format json"
        )
        assert (faulted.returncode, faulted.stderr) == (0, "boom\n")
        assert json.loads(faulted.stdout)["release"] == "8.2"
        info = subprocess.run(
            [PVESIM, "info", "--dir", str(state)], capture_output=True, text=True, check=True
        )
        assert ClusterInfo.from_json(info.stdout).node("pve2").port == node2["port"]
        again_up = subprocess.run(
            [PVESIM, "up", "--dir", str(state)], capture_output=True, text=True, check=False
        )
        assert again_up.returncode == 1
        assert "already up" in again_up.stderr
    finally:
        for _ in range(2):  # idempotent
            down = subprocess.run(
                [PVESIM, "down", "--dir", str(state)], capture_output=True, text=True, check=False
            )
            assert down.returncode == 0, down.stderr
    refused = _plain_ssh(node1, "qm list")
    assert refused.returncode == 255
    assert "Connection refused" in refused.stderr


def test_host_key_checking_is_on(pve: SimCluster, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    node = pve.node("pve1").info
    result = _plain_ssh(
        {
            "identityFile": node.identityFile,
            "knownHostsFile": node.knownHostsFile,
            "port": str(node.port),
            "user": node.user,
        },
        "true",
        known_hosts=str(empty),
    )
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


def test_only_the_generated_key_is_accepted(pve: SimCluster, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    node = pve.node("pve1").info
    result = _plain_ssh(
        {
            "identityFile": str(other),
            "knownHostsFile": node.knownHostsFile,
            "port": str(node.port),
            "user": node.user,
        },
        "true",
    )
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_session_paths_look_like_the_node(pve: SimCluster, pve1: SshNode, pve2: SshNode) -> None:
    pve1.ok("qm create 100 --name one")
    pve2.ok("qm create 200 --name two")
    assert pve1.ok("ls /etc/pve/qemu-server") == "100.conf\n"
    assert pve2.ok("ls /etc/pve/qemu-server") == "200.conf\n"
    assert pve1.ok("ls /etc/pve/local/qemu-server") == "100.conf\n"
    assert pve1.ok("ls /etc/pve/nodes/*/qemu-server/") == (
        "/etc/pve/nodes/pve1/qemu-server/:\n100.conf\n\n/etc/pve/nodes/pve2/qemu-server/:\n200.conf\n"
    )
    # the batched inventory of one SSH call
    out = pve1.ok('for f in /etc/pve/nodes/*/qemu-server/*.conf; do echo "== $f"; cat "$f"; done')
    assert "== /etc/pve/nodes/pve2/qemu-server/200.conf\n" in out
    assert "name: two\n" in out
    assert "lvmthin: local-lvm" in pve1.ok("cat /etc/pve/storage.cfg")
    assert json.loads(pve2.ok("cat /etc/pve/.vmlist"))["ids"]["100"]["node"] == "pve1"
    # /var/lib/vz is each node's own
    pve1.ok("echo hello > /var/lib/vz/import/only-on-pve1")
    assert pve1.ok("cat /var/lib/vz/import/only-on-pve1") == "hello\n"
    assert pve2.run("cat /var/lib/vz/import/only-on-pve1").rc != 0
    # and nothing leaks into the host
    assert not Path("/var/lib/vz/import/only-on-pve1").exists()
    assert not Path("/etc/pve/qemu-server/100.conf").exists()


def test_command_line_runs_in_a_shell(pve1: SshNode) -> None:
    assert pve1.ok("qm create 100; qm create 101 && qm list | wc -l") == "3\n"
    assert pve1.ok("command -v qm; command -v pvesh").splitlines() == [
        str(Path(pve1.info.identityFile).parent.parent / "bin" / "qm"),
        str(Path(pve1.info.identityFile).parent.parent / "bin" / "pvesh"),
    ]
    assert pve1.run("exit 7").rc == 7
    assert pve1.run("qm status 999; echo after").out == "after\n"
    assert pve1.run("cat", stdin="from stdin\n").out == "from stdin\n"


def test_sftp_upload_reaches_that_nodes_importdisk_only(
    pve: SimCluster, pve1: SshNode, pve2: SshNode, qcow2_image: Path
) -> None:
    put = pve1.sftp_put(qcow2_image, "/var/lib/vz/import/up.qcow2")
    assert put.rc == 0, put.err
    pve1.ok("qm create 100")
    pve2.ok("qm create 200")
    out = pve1.ok("qm importdisk 100 /var/lib/vz/import/up.qcow2 local-lvm")
    assert out.splitlines()[-1] == "unused0: successfully imported disk 'local-lvm:vm-100-disk-0'"
    missing = pve2.run("qm importdisk 200 /var/lib/vz/import/up.qcow2 local-lvm")
    assert (missing.rc, missing.err) == (
        255,
        "/var/lib/vz/import/up.qcow2: non-existent or non-regular file\n",
    )
    assert [s.command for s in pve.sessions("pve1") if "sftp" in s.command] == [
        "/usr/lib/openssh/sftp-server"
    ]


def test_call_logs_count_remote_calls(pve: SimCluster, pve1: SshNode, pve2: SshNode) -> None:
    pve1.ok("qm list; qm list; pvesh get /nodes --output-format json")
    pve2.run("qm status 999")
    calls = calllog.read(pve.dir)
    assert [(c.node, c.argv, c.rc) for c in calls] == [
        ("pve1", ("qm", "list"), 0),
        ("pve1", ("qm", "list"), 0),
        ("pve1", ("pvesh", "get", "/nodes", "--output-format", "json"), 0),
        ("pve2", ("qm", "status", "999"), 2),
    ]
    assert all(c.duration >= 0 for c in calls)
    assert sum(1 for c in calllog.read(pve.dir, "pve1") if c.startswith("qm", "list")) == 2
    sessions = calllog.read_sessions(pve.dir)
    assert [(s.node, s.command, s.rc) for s in sessions] == [
        ("pve1", "qm list; qm list; pvesh get /nodes --output-format json", 0),
        ("pve2", "qm status 999", 2),
    ]
    text = subprocess.run(
        [PVESIM, "calls", "--dir", str(pve.dir), "--node", "pve2"], capture_output=True, text=True, check=True
    )
    assert text.stdout.count("\n") == 1
    assert "rc=2" in text.stdout
    assert "qm status 999" in text.stdout


def test_session_log_escapes_the_command_line(pve: SimCluster, pve1: SshNode) -> None:
    command = 'printf "%s\\n" "a\\\\b" \'"q"\'\tx'
    pve1.ok(command)
    assert [s.command for s in pve.sessions("pve1")] == [command]


@pytest.mark.parametrize("tool", ["qm", "pvesh"])
def test_tools_start_fast(pve: SimCluster, pve1: SshNode, tool: str) -> None:
    pve1.ok(f"for i in 1 2 3 4 5; do {tool} {'list' if tool == 'qm' else 'get /version'} >/dev/null; done")
    sessions = pve.sessions("pve1")
    assert sessions[-1].duration < 2.5, "5 invocations should take well under half a second each"
