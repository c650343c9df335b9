"""The GitRepo controller end to end: a real git server (sshd + git-shell on loopback) whose post-receive hook sends
signed pushes to the real webhook sidecar, real nix building the test flake's images, the real control plane (its
garbage collector included), pvesim nodes and `proxnix operator`, both as their ServiceAccounts.

Every change reaches the VMs by `git push` alone: the hook → the sidecar marks the GitRepo → the operator fetches,
evaluates, builds, applies (the GitRepo polls only every hour). The tests run in order on one fleet (web01, web02
protected, db01 on pve2 with deletionPolicy Retain) and wait on conditions, never on a guess.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from proxnix_testbed.gitserver import GitServer, WebhookTarget
from proxnix_testbed.sandbox import Sandbox
from tests.e2e.conftest import condition, node_config
from tests.support.flakes import FLAKES, write_flake, write_labels
from tests.support.gitwork import WorkingCopy

pytestmark = pytest.mark.e2e

HOOK_SECRET = b"e2e-push-secret"
GC_WITHIN = 90  # the collector notices a new custom kind on a 30 s discovery resync; measured 21-41 s
FLEET = {"web01": ("pve1", 100), "web02": ("pve1", 101), "db01": ("pve2", 110)}


@dataclass
class Fleet:
    """The user's side: a working copy of the fleet repository, and the sandbox the pushes land in."""

    sb: Sandbox
    work: WorkingCopy
    server: GitServer
    timings: dict[str, float] = field(default_factory=dict)

    def push(self, message: str, vms: str | None = None, **labels: str) -> str:
        """Commit (vms.nix from a variant or as given, image labels) and push; returns the new head."""
        if vms is not None:
            (self.work.path / "vms.nix").write_text(vms)
        if labels:
            write_labels(self.work.path, {"web": "web-v1", "db": "db-v1", "unused": "never-built", **labels})
        head = self.work.commit(message)
        pushed = self.work.push()
        assert "-> 202" in pushed, pushed  # the sidecar accepted the hook's delivery
        return head

    def gitrepo(self) -> dict[str, Any]:
        found = self.sb.get("gitrepo", "fleet")
        assert found is not None
        return found

    def wait_fetched(self, head: str, timeout: float = 60) -> dict[str, Any]:
        """The GitRepo after a reconcile of `head` finished (Reconciling False, or a problem reported)."""

        def done() -> dict[str, Any] | None:
            repo = self.gitrepo()
            status = repo.get("status") or {}
            finished = condition(repo, "Reconciling").get("reason") not in {
                "Fetching",
                "Evaluating",
                "Building",
            }
            return repo if status.get("lastFetchedRevision") == head and finished else None

        found: dict[str, Any] = self.sb.wait_for(done, timeout, f"GitRepo fetched {head[:12]}")
        return found

    def wait_ready(self, head: str, timeout: float = 120) -> dict[str, Any]:
        """The GitRepo Ready for `head` (applied, every ProxmoxVM Ready for it)."""

        def ready() -> dict[str, Any] | None:
            repo = self.gitrepo()
            applied = (repo.get("status") or {}).get("lastAppliedRevision") == head
            return repo if applied and condition(repo, "Ready").get("status") == "True" else None

        found: dict[str, Any] = self.sb.wait_for(ready, timeout, f"GitRepo Ready at {head[:12]}")
        return found

    def configs(self) -> dict[str, dict[str, str] | None]:
        return {name: node_config(self.sb, node, vmid) for name, (node, vmid) in FLEET.items()}

    def vm_specs(self) -> dict[str, Any]:
        return {name: (self.sb.get("proxmoxvm", name) or {}).get("spec") for name in FLEET}


def _variant(name: str) -> str:
    return (FLAKES / "vms" / f"{name}.nix").read_text()


def _secret(name: str, data: dict[str, bytes]) -> str:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded})


@pytest.fixture(scope="module")
def webhook(sandbox: Sandbox) -> Iterator[str]:
    """`proxnix webhook` as ServiceAccount proxnix-webhook, on loopback; yields its /hook URL."""
    try:
        yield sandbox.start_webhook()
    finally:
        sandbox.stop_webhook()


@pytest.fixture(scope="module")
def fleet(sandbox: Sandbox, webhook: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The fleet repository on the git server (its hook → the sidecar), its first commit pushed, and GitRepo
    `fleet` following main over SSH with the Secrets it needs."""
    root = tmp_path_factory.mktemp("git")
    with GitServer.start(root / "server") as server:
        server.create_repo("fleet", WebhookTarget(url=webhook, secret=HOOK_SECRET))
        work = WorkingCopy(root / "work", server.ssh_url("fleet"), server.ssh_command())
        write_flake(work.path, "fleet")
        work.commit("fleet: web01, web02, db01")
        work.push()
        sb = sandbox
        sb.apply(
            _secret(
                "fleet-git",
                {"identity": server.client_key.read_bytes(), "known_hosts": server.known_hosts.read_bytes()},
            )
        )
        sb.apply(_secret("fleet-hook", {"token": HOOK_SECRET}))
        yield Fleet(sb, work, server)


def _apply_gitrepo(fleet: Fleet, **spec: Any) -> None:
    body = {
        "apiVersion": "proxnix.io/v1alpha1",
        "kind": "GitRepo",
        "metadata": {"name": "fleet", "namespace": "default"},
        "spec": {
            "url": fleet.server.ssh_url("fleet"),
            "ref": {"branch": "main"},
            "secretRef": {"name": "fleet-git"},
            "webhook": {"secretRef": {"name": "fleet-hook"}},
            "defaultNode": "pve1",
            "interval": "1h",
            **spec,
        },
    }
    fleet.sb.apply(json.dumps(body))


def test_applying_a_gitrepo_creates_the_flakes_vms(fleet: Fleet) -> None:
    head = fleet.work.git("rev-parse", "HEAD")
    start = time.monotonic()
    _apply_gitrepo(fleet)
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
    assert any(e["reason"] == "Applied" for e in _events(fleet.sb, "fleet"))


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
    head = fleet.push(f"broken: {variant}", _variant(variant))
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
    _apply_gitrepo(fleet, pruneLimit=0)
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
    assert any(e["reason"] == "Orphaned" for e in _events(sb, "fleet"))
    print(f"\ngitrepo e2e timings: {json.dumps({k: round(v, 2) for k, v in fleet.timings.items()})}")


def _events(sb: Sandbox, name: str) -> list[dict[str, Any]]:
    out = sb.kubectl("get", "events", "-o", "json").out
    return [e for e in json.loads(out)["items"] if e.get("involvedObject", {}).get("name") == name]
