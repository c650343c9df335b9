"""The GitRepo controller survives being killed (SIGKILL) in the middle of a build or of an apply: started again, it
converges on the newest commit with exactly one ProxmoxVM per VM of the flake and no VM touched twice on its node.

Real git server and hook → webhook sidecar, real nix, the real control plane, pvesim nodes. "Touched twice" is
defined in `tests.support.nodecalls`: a VM created, destroyed, started or reimaged twice, or one option of its
config written twice, by completed qm calls on its node between the kill and Ready.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from pvesim import control
from tests.e2e.conftest import condition, events, node_config, node_vmids
from tests.support.fleet import FLEET, Fleet, nix_builds, with_memory
from tests.support.nodecalls import running_qm, touched_twice, writes_since

pytestmark = pytest.mark.e2e


def _one_proxmoxvm_per_vm(fleet: Fleet) -> None:
    """Exactly the flake's ProxmoxVMs (no duplicate name or VMID), each VM once on its node and nothing else there."""
    vms = fleet.labelled_vms()
    names = sorted(vm["metadata"]["name"] for vm in vms)
    vmids = sorted(vm["spec"]["vmid"] for vm in vms)
    assert names == sorted(FLEET)
    assert vmids == sorted(vmid for _, vmid in FLEET.values())
    assert len(fleet.sb.kubectl("get", "proxmoxvms", "-o", "name").out.split()) == len(FLEET)
    for node in ("pve1", "pve2"):
        assert sorted(node_vmids(fleet.sb, node)) == sorted(v for n, v in FLEET.values() if n == node)


def _settled(repo: dict[str, Any]) -> None:
    reconciling = condition(repo, "Reconciling")
    assert reconciling.get("status") != "True", f"stale progress: {reconciling}"


def test_killed_during_a_build_converges_on_the_newest_commit(fleet: Fleet) -> None:
    """The kill lands while nix builds a slow image (12 s); a newer commit is pushed while the operator is down."""
    sb = fleet.sb
    label = f"slow-{secrets.token_hex(4)}"  # never built before: nix really builds it (12 s)
    slow = fleet.push(
        f"web image {label}, web01 4 GiB", with_memory(fleet.vms_text(), "web01", 4096), web=label
    )
    sb.wait_for(
        lambda: (
            (c := condition(fleet.gitrepo(), "Reconciling")).get("reason") == "Building"
            and slow[:12] in c.get("message", "")
        ),
        60,
        f"GitRepo building {slow[:12]}",
    )
    sb.wait_for(lambda: nix_builds(sb.dir), 30, "nix build running")
    killed_at = time.time()
    assert sb.stop_operator(kill=True) == -9
    leftover = nix_builds(sb.dir)
    newest = fleet.push("db01 8 GiB", with_memory(fleet.vms_text(), "db01", 8192))
    sb.start_operator()

    start = time.monotonic()
    repo = fleet.wait_ready(newest, 150)
    fleet.timings["restart → Ready (build killed)"] = time.monotonic() - start
    print(f"\nnix builds of the killed operator still running after the kill: {leftover}")
    sb.wait_for(lambda: not set(leftover) & set(nix_builds(sb.dir)), 60, "the leftover nix builds done")

    status = repo["status"]
    assert status["lastAppliedRevision"] == newest
    _settled(repo)
    assert status["lastPlan"]["reimaged"] == ["web01"]
    assert status["lastPlan"]["updated"] == ["db01"]
    assert [b["name"] for b in status["lastPlan"]["blocked"]] == ["web02"]
    applied = [e["message"] for e in events(sb, "fleet") if e["reason"] == "Applied"]
    assert any(newest[:12] in m for m in applied)
    assert not any(slow[:12] in m for m in applied), "the killed commit was applied after all"
    _one_proxmoxvm_per_vm(fleet)
    assert (node_config(sb, "pve1", 100) or {}).get("memory") == "4096"
    assert (node_config(sb, "pve2", 110) or {}).get("memory") == "8192"

    writes = writes_since(sb.sim_dir, killed_at)
    assert not touched_twice(writes), writes
    assert writes[("pve1", 100)][("create",)] == 1  # web01 reimaged once, with its new memory
    assert writes[("pve2", 110)] == {("set", "memory"): 1}
    assert ("pve1", 101) not in writes  # web02 (protected) left as it was


def test_killed_during_an_apply_converges_without_changing_a_vm_twice(fleet: Fleet) -> None:
    """The kill lands after the GitRepo patched the ProxmoxVMs, while web01's `qm set` runs on its node (held
    there for a few seconds by a fault); db01's change on pve2 may be done or not."""
    sb = fleet.sb
    control.add_faults(sb.sim_dir, 'cmd="qm set" hang=4 count=1', node="pve1")
    vms = with_memory(with_memory(fleet.vms_text(), "web01", 5120), "db01", 6144)
    pushed_at = time.time()
    head = fleet.push("web01 5 GiB, db01 6 GiB", vms)
    sb.wait_for(lambda: running_qm("set", "100"), 60, "`qm set 100` running on pve1")
    assert (fleet.vm_specs()["web01"] or {})["memoryMiB"] == 5120  # the GitRepo's apply is done
    assert sb.stop_operator(kill=True) == -9
    sb.start_operator()

    start = time.monotonic()
    repo = fleet.wait_ready(head, 120)
    fleet.timings["restart → Ready (apply killed)"] = time.monotonic() - start
    assert repo["status"]["lastAppliedRevision"] == head
    _settled(repo)
    _one_proxmoxvm_per_vm(fleet)
    assert (node_config(sb, "pve1", 100) or {}).get("memory") == "5120"
    assert (node_config(sb, "pve2", 110) or {}).get("memory") == "6144"
    writes = writes_since(sb.sim_dir, pushed_at)
    assert not touched_twice(writes), writes
    assert writes[("pve1", 100)] == {("set", "memory"): 1}
    assert writes[("pve2", 110)] == {("set", "memory"): 1}
    assert ("pve1", 101) not in writes
    print(f"\ngitrepo restart timings: { {k: round(v, 2) for k, v in fleet.timings.items()} }")
