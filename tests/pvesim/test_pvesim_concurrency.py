"""Concurrent qm calls (§11) and fault injection while the cluster runs."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pvesim import calllog, control
from pvesim.testing import Result, SimCluster, SshNode

LOCK_TIMEOUT_ERR = "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout\n"


def _parallel(jobs: list[tuple[SshNode, str]]) -> list[Result]:
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda job: job[0].run(job[1]), jobs))


def test_parallel_creates_of_different_vmids_succeed(pve: SimCluster, pve1: SshNode, pve2: SshNode) -> None:
    jobs = [(pve1 if i % 2 else pve2, f"qm create {100 + i} --scsi0 local-lvm:1") for i in range(8)]
    results = _parallel(jobs)
    assert [r.rc for r in results] == [0] * 8, [r.err for r in results]
    assert len(pve1.ok("qm list").splitlines()) == 5
    assert len(pve2.ok("qm list").splitlines()) == 5
    # each VM got its own disk on its node's storage
    assert sorted(pve1.ok("ls /etc/pve/nodes/*/qemu-server/").split()) == sorted(
        ["/etc/pve/nodes/pve1/qemu-server/:", "/etc/pve/nodes/pve2/qemu-server/:"]
        + [f"{100 + i}.conf" for i in range(8)]
    )


def test_parallel_allocations_on_one_storage_get_distinct_volumes(pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    results = _parallel(
        [(pve1, f"qm importdisk 100 /var/lib/vz/import/{n}.raw local-lvm") for n in ("a", "b", "c")]
    )
    # the sources do not exist yet: all fail the same way, no volume is allocated
    assert {r.err for r in results} == {
        f"/var/lib/vz/import/{n}.raw: non-existent or non-regular file\n" for n in "abc"
    }
    pve1.ok("for n in a b c; do qemu-img create -q -f raw /var/lib/vz/import/$n.raw 4M; done")
    results = _parallel(
        [(pve1, f"qm disk import 100 /var/lib/vz/import/{n}.raw local-lvm") for n in ("a", "b", "c")]
    )
    assert [r.rc for r in results] == [0, 0, 0], [r.err for r in results]
    unused = sorted(line for line in pve1.ok("qm config 100").splitlines() if line.startswith("unused"))
    assert [u.split(": ")[1] for u in unused] == [f"local-lvm:vm-100-disk-{i}" for i in range(3)]


def test_same_vmid_created_on_two_nodes_at_once(pve1: SshNode, pve2: SshNode) -> None:
    results = _parallel(
        [(pve1, "qm create 100"), (pve2, "qm create 100"), (pve1, "qm create 100"), (pve2, "qm create 100")]
    )
    assert sorted(r.rc for r in results) == [0, 255, 255, 255]
    losers = [r.err for r in results if r.rc]
    # a loser on the winner's node may first wait for the placeholder's lock, and says so (as PVE does)
    refused = re.compile(
        r"(trying to acquire lock\.\.\. OK\n)?unable to create VM 100 - VM 100 already exists on node 'pve[12]'\n"
    )
    assert all(refused.fullmatch(err) for err in losers), losers
    assert len(pve1.ok("ls /etc/pve/nodes/*/qemu-server/*.conf").split()) == 1


def test_concurrent_operations_on_one_vmid_see_the_lock(pve: SimCluster, pve1: SshNode) -> None:
    pve.tune(lock_timeout=1.0)
    pve1.ok("qm create 100")
    pve.add_faults('cmd="qm set" slow=3 count=1', node="pve1")  # a qm set that holds the config lock 3 s
    holder = pve1.popen("qm set 100 --cores 2")
    _wait_until_locked(pve, "pve1", 100)
    started = time.monotonic()
    direct, task = _parallel([(pve1, "qm set 100 --cores 3"), (pve1, "qm start 100")])
    assert time.monotonic() - started >= 1.0
    # a direct command: both parts on stderr; a task: the log (with the lock message) on stdout, the error on stderr
    assert (direct.rc, direct.out, direct.err) == (255, "", "trying to acquire lock..." + LOCK_TIMEOUT_ERR)
    assert (task.rc, task.out, task.err) == (255, "trying to acquire lock...", LOCK_TIMEOUT_ERR)
    assert holder.communicate(timeout=30) == ("update VM 100: -cores 2\n", "")
    assert "cores: 2" in pve1.ok("qm config 100").splitlines()


def test_a_waiter_gets_the_lock_when_it_is_released_in_time(pve: SimCluster, pve1: SshNode) -> None:
    pve.tune(lock_timeout=30.0)
    pve1.ok("qm create 100")
    path = pve.layout.lock_dir("pve1") / "lock-100.conf"
    with path.open("a") as held:  # another holder of the lock: this test
        fcntl.flock(held, fcntl.LOCK_EX)
        waiter = pve1.popen("qm set 100 --cores 3")
        _wait_for_blocked_flock(path)
    assert waiter.communicate(timeout=30) == ("update VM 100: -cores 3\n", "trying to acquire lock... OK\n")
    assert waiter.returncode == 0


def _wait_for_blocked_flock(path: Path, timeout: float = 20.0) -> None:
    """Wait until a process is blocked waiting for the flock on `path` (a `->` entry in /proc/locks)."""
    inode = os.stat(path).st_ino
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path("/proc/locks").read_text().splitlines():
            if "->" in line and line.split()[6].endswith(f":{inode}"):
                return
        time.sleep(0.02)
    raise AssertionError(f"nobody waited for the lock {path} within {timeout} s")


def _wait_until_locked(cluster: SimCluster, node: str, vmid: int, timeout: float = 10.0) -> None:
    """Wait until some process holds the config flock of `vmid` on `node`."""
    path = cluster.layout.lock_dir(node) / f"lock-{vmid}.conf"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with path.open("a") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return
                fcntl.flock(fh, fcntl.LOCK_UN)
        time.sleep(0.02)
    raise AssertionError(f"nobody took the lock of VM {vmid} on {node} within {timeout} s")


# --- faults -------------------------------------------------------------------------------------------------


def test_fail_fault_with_count(pve: SimCluster, pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    pve.add_faults('cmd="qm start" fail="start failed: simulated" rc=42 count=1')
    first = pve1.run("qm start 100")
    assert (first.rc, first.out, first.err) == (42, "", "start failed: simulated\n")
    assert pve1.run("qm start 100").rc == 0
    faulted = [c for c in calllog.read(pve.dir, "pve1") if c.fault]
    assert [(c.argv, c.fault, c.rc) for c in faulted] == [(("qm", "start", "100"), "fail", 42)]


def test_fault_with_skip_and_probability(pve: SimCluster, pve1: SshNode) -> None:
    pve.add_faults("cmd=qm fail skip=2 count=1; cmd=pvesh fail prob=0", node="pve1")
    assert [pve1.run("qm list").rc for _ in range(4)] == [0, 0, 255, 0]
    assert pve1.run("pvesh get /nodes").rc == 0
    assert [r.describe() for r in control.list_faults(pve.dir)["pve1"]] == [
        "node=pve1 cmd=pvesh fail prob=0.0"
    ]


def test_lock_timeout_fault(pve: SimCluster, pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    pve.add_faults("cmd='qm set' locktimeout=0.2 count=1")
    result = pve1.run("qm set 100 --cores 2")
    assert (result.rc, result.err) == (255, "trying to acquire lock..." + LOCK_TIMEOUT_ERR)
    pve1.ok("qm set 100 --cores 2")


def test_hung_command(pve: SimCluster, pve1: SshNode) -> None:
    pve.add_faults("cmd='qm list' hang=30 count=1", node="pve1")
    proc = pve1.popen("qm list")
    try:
        proc.wait(timeout=1.0)
        raise AssertionError("a hung qm returned")
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert pve1.ok("qm list") == ""  # the next call is not affected


def test_node_down_refuses_connections_and_comes_back(pve: SimCluster, pve1: SshNode, pve2: SshNode) -> None:
    pve2.ok("qm create 200")
    cli = subprocess.run(
        [_pvesim(), "fault", "--dir", str(pve.dir), "--node", "pve2", "down"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    refused = pve2.run("qm list", mux=False)
    assert refused.rc == 255
    assert "Connection refused" in refused.err
    assert pve2.run("qm list").rc == 255  # the multiplexed master connection was dropped, too
    assert pve1.run("qm migrate 200 pve1").rc != 0  # not pve1's VM
    pve1.ok("qm create 100")
    assert pve1.run("qm migrate 100 pve2").rc == 255  # the target is unreachable
    listing = subprocess.run(
        [_pvesim(), "fault", "--dir", str(pve.dir), "--list"], capture_output=True, text=True, check=True
    )
    assert "pve2\t#" in listing.stdout
    assert "down" in listing.stdout
    subprocess.run([_pvesim(), "fault", "--dir", str(pve.dir), "--node", "pve2", "--clear"], check=True)
    assert pve2.ok("qm list").splitlines()[1].split()[0] == "200"


def test_latency_is_added_to_every_call(pve: SimCluster, pve1: SshNode) -> None:
    pve.tune("pve1", latency=0.3)
    pve1.ok("qm list; pvesh get /nodes")
    durations = [c.duration for c in calllog.read(pve.dir, "pve1")]
    assert len(durations) == 2
    assert min(durations) >= 0.3


def _pvesim() -> str:
    import sys

    return str(Path(sys.executable).parent / "pvesim")


def test_node_and_tune_commands(pve: SimCluster, pve1: SshNode, pve2: SshNode) -> None:
    subprocess.run([_pvesim(), "node", "--dir", str(pve.dir), "pve2", "down"], check=True)
    assert pve2.run("true", mux=False).rc == 255
    subprocess.run([_pvesim(), "node", "--dir", str(pve.dir), "pve2", "up"], check=True)
    assert pve2.run("true", mux=False).rc == 0
    subprocess.run(
        [_pvesim(), "tune", "--dir", str(pve.dir), "--node", "pve2", "pve_version=8.2"], check=True
    )
    assert '"release":"8.2"' in pve2.ok("pvesh get /version --output-format json")
    assert '"release":"8.3"' in pve1.ok("pvesh get /version --output-format json")
    bad = subprocess.run(
        [_pvesim(), "tune", "--dir", str(pve.dir), "bogus=1"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert "expected KEY=VALUE" in bad.stderr
