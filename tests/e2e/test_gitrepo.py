"""The GitRepo controller end to end: a real git server (sshd + git-shell on loopback) whose post-receive hook sends
signed pushes to the real webhook sidecar, real nix building the test flake's images, the real control plane (its
garbage collector included), pvesim nodes and `proxnix operator`, both as their ServiceAccounts.

Every change reaches the VMs by `git push` alone: the hook → the sidecar marks the GitRepo → the operator fetches,
evaluates, builds, applies (the GitRepo polls only every hour). The tests run in order on one fleet (web01, web02
protected, db01 on pve2 with deletionPolicy Retain) and wait on conditions, never on a guess.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from proxnix_testbed.sandbox import Sandbox
from tests.e2e.conftest import GC_WITHIN, condition, events, node_config
from tests.support.fleet import FLEET, Fleet, open_fleet, vms_variant

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fleet(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The fleet repository on the sandbox's git server (its hook → the webhook sidecar), its first commit pushed,
    and the Secrets GitRepo `fleet` needs (the tests apply the GitRepo)."""
    try:
        yield open_fleet(sandbox, tmp_path_factory.mktemp("git") / "work")
    finally:
        sandbox.stop_webhook()


def test_applying_a_gitrepo_creates_the_flakes_vms(fleet: Fleet) -> None:
    head = fleet.work.git("rev-parse", "HEAD")
    start = time.monotonic()
    fleet.apply_gitrepo()
    repo = fleet.wait_ready(head, 180)
    fleet.timings["first apply (cold build, 3 uploads)"] = time.monotonic() - start
    status = repo["status"]
    assert sorted(entry["name"] for entry in status["inventory"]) == sorted(FLEET)
    assert sorted(status["lastPlan"]["created"]) == sorted(FLEET)
    assert {image["name"] for image in status["images"]} == {"web", "db"}
    for name, (node, vmid) in FLEET.items():
        vm = fleet.sb.get("proxmoxvm", name)
        assert vm is not None
        assert (vm["spec"]["node"], vm["spec"]["vmid"]) == (node, vmid)
        assert vm["metadata"]["ownerReferences"][0]["uid"] == repo["metadata"]["uid"]
        assert vm["spec"]["image"]["source"].startswith("/nix/store/")
        assert node_config(fleet.sb, node, vmid) is not None
    assert any(e["reason"] == "Applied" for e in events(fleet.sb, "fleet"))


def test_a_memory_change_changes_only_that_vm_in_place(fleet: Fleet) -> None:
    before = fleet.configs()
    vms = (fleet.work.path / "vms.nix").read_text()
    assert "memory_mb = 2048;" in vms
    start = time.monotonic()
    head = fleet.push("web01: 3 GiB", vms.replace("memory_mb = 2048;", "memory_mb = 3072;", 1))
    fleet.sb.wait_for(
        lambda: (node_config(fleet.sb, "pve1", 100) or {}).get("memory") == "3072",
        60,
        "web01's memory on pve1",
    )
    fleet.timings["push → memory on the node"] = time.monotonic() - start
    repo = fleet.wait_ready(head)
    assert repo["status"]["lastPlan"]["updated"] == ["web01"]
    after = fleet.configs()
    assert after["web02"] == before["web02"]
    assert after["db01"] == before["db01"]
    web01_before, web01_after = before["web01"], after["web01"]
    assert web01_before is not None
    assert web01_after is not None
    assert web01_after["scsi0"] == web01_before["scsi0"]  # same disk: changed in place, not recreated


def test_an_image_change_reimages_only_its_vms_and_reports_the_protected_one(fleet: Fleet) -> None:
    before = fleet.configs()
    old_image = {name: (fleet.sb.get("proxmoxvm", name) or {})["status"]["imageSha256"] for name in FLEET}
    start = time.monotonic()
    head = fleet.push("web image v2", web="web-v2")
    repo = fleet.wait_ready(head, 120)
    fleet.timings["push → reimage Ready"] = time.monotonic() - start
    plan = repo["status"]["lastPlan"]
    assert plan["reimaged"] == ["web01"]
    assert plan["unchanged"] == ["db01"]
    assert [b["name"] for b in plan["blocked"]] == ["web02"]
    assert "protected" in plan["blocked"][0]["reason"]
    new_image = {name: (fleet.sb.get("proxmoxvm", name) or {})["status"]["imageSha256"] for name in FLEET}
    assert new_image["web01"] != old_image["web01"]
    assert new_image["web02"] == old_image["web02"]
    assert new_image["db01"] == old_image["db01"]
    after = fleet.configs()
    assert after["web02"] == before["web02"]
    assert after["db01"] == before["db01"]


@pytest.mark.parametrize(
    ("variant", "reason"),
    [("eval-error", "EvaluationFailed"), ("invalid-vm", "InvalidVM"), ("duplicate-vmid", "DuplicateVMID")],
)
def test_a_broken_commit_leaves_every_vm_as_it_was_and_says_why(
    fleet: Fleet, variant: str, reason: str
) -> None:
    configs, specs = fleet.configs(), fleet.vm_specs()
    applied = fleet.gitrepo()["status"]["lastAppliedRevision"]
    good = (fleet.work.path / "vms.nix").read_text()
    head = fleet.push(f"broken: {variant}", vms_variant(variant))
    repo = fleet.wait_fetched(head)
    ready = condition(repo, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert f"keep running as applied from {applied[:12]}" in ready["message"]
    assert repo["status"]["lastAppliedRevision"] == applied
    assert fleet.vm_specs() == specs
    assert fleet.configs() == configs
    # the fix is the next push
    fixed = fleet.push(f"fix {variant}", good)
    fleet.wait_ready(fixed)
    assert fleet.vm_specs() == specs


def test_removing_a_vm_prunes_it(fleet: Fleet) -> None:
    vms = (fleet.work.path / "vms.nix").read_text()
    start = vms.index("  db01 = {")
    head = fleet.push("drop db01", vms[:start] + "}\n")
    repo = fleet.wait_ready(head)
    assert repo["status"]["lastPlan"]["pruned"] == ["db01"]
    fleet.sb.wait_for(lambda: fleet.sb.get("proxmoxvm", "db01") is None, 60, "ProxmoxVM db01 gone")
    assert node_config(fleet.sb, "pve2", 110) is not None  # its own deletionPolicy: Retain


def test_a_prune_over_the_limit_waits_for_confirmation(fleet: Fleet) -> None:
    fleet.apply_gitrepo(pruneLimit=0)
    vms = (fleet.work.path / "vms.nix").read_text()
    start, end = vms.index("  web01 = {"), vms.index("  web02 = {")
    head = fleet.push("drop web01", vms[:start] + vms[end:])
    repo = fleet.wait_fetched(head)
    applied = condition(repo, "Applied")
    assert (applied["status"], applied["reason"]) == ("False", "PruneLimitExceeded")
    assert f"proxnix.io/confirm-prune={head}" in applied["message"]
    assert fleet.sb.get("proxmoxvm", "web01") is not None
    assert node_config(fleet.sb, "pve1", 100) is not None
    fleet.sb.kubectl("annotate", "gitrepo", "fleet", f"proxnix.io/confirm-prune={head}")
    fleet.wait_ready(head)
    fleet.sb.wait_for(lambda: fleet.sb.get("proxmoxvm", "web01") is None, 60, "ProxmoxVM web01 pruned")
    fleet.sb.wait_for(lambda: node_config(fleet.sb, "pve1", 100) is None, 60, "web01 destroyed (Delete)")


def test_deleting_the_gitrepo_orphans_its_vms_and_the_garbage_collector_does_not_cascade(
    fleet: Fleet,
) -> None:
    sb = fleet.sb
    repo = fleet.gitrepo()
    before = node_config(sb, "pve1", 101)
    assert before is not None
    witness = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned-by-gitrepo-fleet",
            "ownerReferences": [
                {
                    "apiVersion": repo["apiVersion"],
                    "kind": "GitRepo",
                    "name": "fleet",
                    "uid": repo["metadata"]["uid"],
                }
            ],
        },
    }
    sb.apply(json.dumps(witness))
    sb.kubectl("delete", "gitrepo", "fleet", "--wait=false")
    sb.wait_for(lambda: sb.get("gitrepo", "fleet") is None, 60, "GitRepo fleet gone")
    # The collector removed the GitRepo's other dependent: it has handled the GitRepo's deletion.
    sb.wait_for(
        lambda: sb.get("configmap", "owned-by-gitrepo-fleet") is None, GC_WITHIN, "the witness collected"
    )
    web02 = sb.get("proxmoxvm", "web02")
    assert web02 is not None
    assert not web02["metadata"].get("ownerReferences")
    assert not web02["metadata"].get("deletionTimestamp")
    assert web02["metadata"]["labels"]["proxnix.io/gitrepo"] == "fleet"  # adoptable by the next GitRepo
    assert node_config(sb, "pve1", 101) == before
    assert any(e["reason"] == "Orphaned" for e in events(sb, "fleet"))
    print(f"\ngitrepo e2e timings: {json.dumps({k: round(v, 2) for k, v in fleet.timings.items()})}")
