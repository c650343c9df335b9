"""The inventory script, run with a real `sh` against a fake /etc/pve tree and a fake `pvesh`, and its parser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxnix.proxmox.errors import ParseError
from proxnix.proxmox.inventory import inventory_script, new_nonce, parse_inventory
from tests.proxmox.conftest import FIXTURES, fixture_text

UID_100 = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def run_script(tmp_path: Path, *, pvesh_rc: int = 0, pid_dir: bool = True) -> tuple[str, str, str]:
    conf = tmp_path / "qemu-server"
    conf.mkdir()
    for vmid, name in (
        (100, "conf-100-full.conf"),
        (101, "conf-101-minimal.conf"),
        (102, "conf-102-locked-legacy.conf"),
    ):
        shutil.copy(FIXTURES / name, conf / f"{vmid}.conf")
    (conf / "103.conf").write_text(fixture_text("conf-103-bad-line.conf"))
    (conf / "notes.conf").write_text("not a vm\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pvesh = bindir / "pvesh"
    pvesh.write_text(
        "#!/bin/sh\n"
        f'[ "$*" = "get /cluster/resources --type vm --output-format json" ] || exit 3\n'
        f"cat {FIXTURES / 'pvesh-cluster-resources.json'}\n"
        f'echo "perl: warning: Setting locale failed." >&2\nexit {pvesh_rc}\n'
    )
    pvesh.chmod(0o755)
    pids = tmp_path / "run"
    if pid_dir:
        pids.mkdir()
    nonce = new_nonce()
    script = inventory_script(nonce, conf_dir=str(conf), pid_dir=str(pids))
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    sleeper = None
    try:
        if pid_dir:
            pidfile = pids / "100.pid"
            sleeper = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(60)", "-pidfile", str(pidfile)]
            )
            pidfile.write_text(f"{sleeper.pid}\n")
            (pids / "101.pid").write_text("999999999\n")  # stale pidfile
        done = subprocess.run(
            ["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30, check=True
        )
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
    return done.stdout, done.stderr, nonce


def test_script_against_fake_node(tmp_path: Path) -> None:
    stdout, stderr, nonce = run_script(tmp_path)
    inv = parse_inventory(stdout, nonce, node="pve1", stderr=stderr)
    assert inv.resources_error == ""
    assert set(inv.vms) == {100, 101, 102, 103}
    vm100 = inv.vms[100]
    assert (vm100.power_state, vm100.power_source) == ("running", "pid")
    assert vm100.ownership.owned_by(UID_100)
    assert vm100.pending_keys == ["balloon", "cores", "memory", "onboot"]
    assert vm100.protection is True
    assert vm100.disk_gib == 64.0
    observed = vm100.to_observed()
    assert (observed.cores, observed.memory_mib, observed.pending) == (4, 8192, vm100.pending_keys)
    assert (inv.vms[101].power_state, inv.vms[101].power_source) == ("stopped", "pid")  # stale pidfile
    assert inv.vms[102].lock == "backup"
    assert inv.vms[102].ownership.legacy
    assert inv.vms[103].config is None
    assert "this line is not a config line" in inv.vms[103].error
    assert inv.owned_by(UID_100) is vm100
    assert inv.vmid_holder(200) == "pve2"
    assert inv.vmid_holder(100) == "pve1"
    assert inv.vmid_holder(4242) is None
    assert set(inv.cluster) == {100, 101, 102, 200, 300, 999}


def test_without_pid_dir_power_comes_from_resources(tmp_path: Path) -> None:
    stdout, stderr, nonce = run_script(tmp_path, pid_dir=False)
    inv = parse_inventory(stdout, nonce, node="pve1", stderr=stderr)
    assert (inv.vms[100].power_state, inv.vms[100].power_source) == ("running", "resources")
    assert (inv.vms[102].power_state, inv.vms[102].power_source) == ("unknown", "none")  # resources: on pve2


def test_pvesh_failure_keeps_configs(tmp_path: Path) -> None:
    stdout, stderr, nonce = run_script(tmp_path, pvesh_rc=2, pid_dir=False)
    inv = parse_inventory(stdout, nonce, node="pve1", stderr=stderr)
    assert "locale" in inv.resources_error
    assert inv.cluster == {}
    assert set(inv.vms) == {100, 101, 102, 103}
    assert inv.vms[100].power_state == "unknown"


def test_frame_errors() -> None:
    nonce = "0123456789abcdef"
    with pytest.raises(ParseError, match="begin marker"):
        parse_inventory("hello\n", nonce, node="pve1")
    with pytest.raises(ParseError, match="end marker"):
        parse_inventory(f"@@{nonce} begin 1\n@@{nonce} resources\n[]\n", nonce, node="pve1")
    with pytest.raises(ParseError, match="unknown section"):
        parse_inventory(f"@@{nonce} begin 1\n@@{nonce} surprise\n@@{nonce} end\n", nonce, node="pve1")
    empty = parse_inventory(
        f"@@{nonce} begin 1\n@@{nonce} resources\n[]\n\n@@{nonce} resources-rc 0\n@@{nonce} end\n",
        nonce,
        node="pve1",
    )
    assert empty.vms == {}
    assert empty.cluster == {}
    with pytest.raises(ValueError, match="invalid nonce"):
        inventory_script("not-hex; rm -rf /")
