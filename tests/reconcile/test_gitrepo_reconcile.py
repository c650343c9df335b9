"""The GitRepo reconcile's steps (fetch → evaluate → build → apply → prune → report) and its safety rules, against
in-memory git, nix and Kubernetes (`tests.support.fake_gitrepo`, nix answering with real captured outputs): what it
writes, in which order, and what it reports. A commit is applied whole or not at all."""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path
from typing import Any

import pytest

from proxnix.adapters.git import GitError
from proxnix.api.conditions import find_condition
from proxnix.api.gitrepo import GitRepoSpec, GitRepoStatus
from proxnix.api.meta import ANNOTATION_REQUESTED_AT
from proxnix.reconcile.gitrepo import GitRepoReconciler, GitRepoRef
from proxnix.reconcile.outcome import APPLY_FAILED, SOURCE_UNAVAILABLE, VMS_PENDING, Outcome
from proxnix.sources.gitsource import GitErrorKind
from tests.support.fake_gitrepo import (
    VMS,
    FakeBuilder,
    FakeCluster,
    FakeSource,
    FakeTimer,
    captured_eval,
    captured_eval_error,
    revision,
    store_path,
)

UID = "3f1c0d2e-0000-4000-8000-000000000001"
OTHER_UID = "3f1c0d2e-0000-4000-8000-000000000002"
FLEET = ["db01", "web01", "web02"]


class World:
    """A GitRepo `infra` following main, with nodes pve1 and pve2, and the fakes behind its reconciler."""

    def __init__(self, tmp: Path, **spec: Any) -> None:
        self.source = FakeSource(tmp)
        self.builder = FakeBuilder()
        self.cluster = FakeCluster()
        self.cluster.node("pve1")
        self.cluster.node("pve2")
        self.timer = FakeTimer()
        self.reconciler = GitRepoReconciler(
            self.cluster, self.source, self.builder, self.timer, burst_quiet=0.05, burst_limit=2.0
        )
        self.spec = GitRepoSpec.model_validate(
            {"url": "file:///srv/git/fleet.git", "defaultNode": "pve1", **spec}
        )
        self.status = GitRepoStatus()
        self.generation = 1
        self.progress: list[dict[str, Any]] = []
        self.n = 0

    def push(self, output: dict[str, Any] | None, *, eval_error: str = "", **labels: str) -> str:
        self.n += 1
        rev = revision(self.n)
        self.builder.commit(rev, output, **labels)
        self.builder.commits[rev].eval_error = eval_error
        self.source.push("main", rev, f"commit {self.n}")
        return rev

    def mark(self, at: str) -> None:
        """The webhook sidecar's mark of a push on the GitRepo, as the API server has it (`requested-at`)."""
        meta = {"name": "infra", "annotations": {ANNOTATION_REQUESTED_AT: at}}
        self.cluster.add("gitrepos", {"kind": "GitRepo", "metadata": meta})

    def fetches(self) -> int:
        return sum(1 for verb, _ in self.source.calls if verb == "fetch")

    def ref(self, **annotations: str) -> GitRepoRef:
        return GitRepoRef("default", "infra", UID, self.generation, self.spec, self.status, **annotations)

    async def reconcile(self, **annotations: str) -> Outcome:
        async def progress(patch: dict[str, Any]) -> None:
            self.progress.append(patch)

        outcome = await self.reconciler.reconcile(self.ref(**annotations), progress=progress)
        assert isinstance(outcome.status, GitRepoStatus)
        self.status = outcome.status
        return outcome

    def cond(self, type_: str) -> tuple[str, str]:
        found = find_condition(self.status.conditions, type_)
        assert found is not None, type_
        return found.status, found.reason

    def message(self, type_: str) -> str:
        found = find_condition(self.status.conditions, type_)
        assert found is not None, type_
        return found.message

    def spec_of(self, name: str) -> dict[str, Any]:
        obj = self.cluster.vm(name)
        assert obj is not None, name
        spec: dict[str, Any] = obj["spec"]
        return spec


def fleet(**changes: dict[str, Any] | None) -> dict[str, Any]:
    """The captured fleet output, with some VMs' fields changed (a VM given None is removed)."""
    output = copy.deepcopy(captured_eval("fleet"))
    for name, fields in changes.items():
        if fields is None:
            del output["vms"][name]
        else:
            output["vms"][name].update(fields)
    return output


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


async def applied(world: World) -> str:
    """The fleet applied and its VMs Ready; the writes so far forgotten."""
    rev = world.push(fleet())
    await world.reconcile()
    world.cluster.mark_ready()
    await world.reconcile()
    world.cluster.writes.clear()
    return rev


# --- the steps in order ---------------------------------------------------------------------------------------------


async def test_a_first_commit_creates_one_owned_proxmoxvm_per_vm_pointing_at_the_built_images(
    world: World,
) -> None:
    rev = world.push(fleet())
    outcome = await world.reconcile()
    assert world.cluster.writes == [("create", "db01"), ("create", "web01"), ("create", "web02")]
    web = world.cluster.vm("web01")
    assert web is not None
    assert web["metadata"]["labels"] == {"proxnix.io/gitrepo": "infra"}
    (owner,) = web["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("GitRepo", UID, True)
    assert web["spec"]["node"] == "pve1"  # defaultNode
    assert world.spec_of("db01")["node"] == "pve2"
    assert web["spec"]["image"]["source"] == store_path("web", "web-v1") + "/nixos.qcow2"
    assert web["spec"]["image"]["sha256"] == next(i.sha256 for i in world.status.images if i.name == "web")
    assert world.builder.calls == [("evaluate", rev), ("probe", rev), ("build", rev)]
    assert world.builder.roots[world.ref().key] == {store_path("web", "web-v1"), store_path("db", "db-v1")}
    status = world.status
    assert (status.last_fetched_revision, status.last_applied_revision) == (rev, rev)
    assert status.last_applied_message == "commit 1"
    assert [e.name for e in status.inventory] == FLEET
    assert status.last_plan is not None
    assert status.last_plan.created == FLEET
    assert world.cond("SourceFetched") == ("True", "Succeeded")
    assert world.cond("FetchFailed") == ("False", "Succeeded")
    assert world.cond("BuildFailed") == ("False", "Succeeded")
    assert world.cond("Applied") == ("True", "Succeeded")
    # Applied is not Ready: the VMs are not Ready for their generation yet.
    assert world.cond("Ready") == ("False", "VMsNotReady")
    assert world.cond("Reconciling") == ("True", "VMsNotReady")
    assert [e.reason for e in outcome.events] == ["Applied"]
    assert (outcome.retry, outcome.stall) == (None, "")


async def test_progress_names_each_step_in_order(world: World) -> None:
    world.push(fleet())
    await world.reconcile()
    reasons = []
    for patch in world.progress:
        (reconciling,) = [c for c in patch["conditions"] if c["type"] == "Reconciling"]
        assert reconciling["status"] == "True"
        reasons.append(reconciling["reason"])
    assert reasons == ["Fetching", "Evaluating", "Building", "Applying"]


async def test_each_reconcile_reports_how_long_its_steps_took(world: World) -> None:
    original_build = world.builder.build

    async def slow_build(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return await original_build(*args, **kwargs)

    world.builder.build = slow_build  # type: ignore[method-assign]
    world.push(fleet())
    await world.reconcile()
    assert world.timer.names() == ["fetch", "eval", "build", "apply"]
    seconds = dict(world.timer.steps)
    assert seconds["build"] >= 0.05
    assert all(seconds[step] >= 0 for step in ("fetch", "eval", "apply"))
    world.timer.steps.clear()
    await world.reconcile()  # the same revision: neither evaluated nor built again
    assert world.timer.names() == ["fetch", "apply"]
    world.timer.steps.clear()
    world.source.error = GitError(GitErrorKind.NETWORK, "fetch branch main: Connection refused")
    await world.reconcile()  # a failed step is reported too, and nothing after it
    assert world.timer.names() == ["fetch"]


async def test_ready_once_every_owned_proxmoxvm_is_ready_for_its_generation(world: World) -> None:
    world.push(fleet())
    await world.reconcile()
    world.cluster.mark_ready("web01", "web02")
    await world.reconcile()
    assert world.cond("Ready") == ("False", "VMsNotReady")
    assert "db01 (not reconciled yet)" in world.message("Ready")
    assert "web01" not in world.message("Ready")
    world.cluster.mark_ready("db01")
    outcome = await world.reconcile()
    assert world.cond("Ready") == ("True", "Succeeded")
    assert world.cond("Reconciling") == ("False", "Succeeded")
    assert outcome.events == []  # the same revision again: no second Applied Event
    assert world.status.last_plan is not None
    assert world.status.last_plan.created == FLEET  # the plan that applied it, not the re-check's
    assert "3 created" in world.message("Ready")  # and the message says what it did
    assert "unchanged" not in world.message("Ready")
    assert world.cluster.writes == [("create", "db01"), ("create", "web01"), ("create", "web02")]


async def test_the_same_revision_is_neither_evaluated_nor_built_again_but_a_deleted_proxmoxvm_is_put_back(
    world: World,
) -> None:
    rev = await applied(world)
    del world.cluster.objects[(VMS, "web01")]
    await world.reconcile()
    assert world.builder.evaluations() == [rev]
    assert world.builder.builds() == [rev]
    assert world.cluster.writes == [("create", "web01")]


async def test_a_proxmoxvm_patched_by_its_new_generation_is_not_ready_until_reconciled(world: World) -> None:
    await applied(world)
    world.push(fleet(web01={"memory_mb": 3072}))
    await world.reconcile()
    assert world.cond("Ready") == ("False", "VMsNotReady")
    assert "web01" in world.message("Ready")


async def test_schedule_polls_at_the_interval_and_soon_while_vms_are_not_ready(world: World) -> None:
    world.push(fleet())
    await world.reconcile()
    uid = world.ref().uid
    now = time.monotonic()
    assert not world.reconciler.due(uid, now)
    assert world.reconciler.due(uid, now + VMS_PENDING.delay_s + 0.1)
    world.cluster.mark_ready()
    await world.reconcile()
    now = time.monotonic()
    assert not world.reconciler.due(uid, now + VMS_PENDING.delay_s + 0.1)
    assert world.reconciler.due(uid, now + 5 * 60 + 0.1)  # spec.interval: 5m


async def test_requested_at_is_echoed(world: World) -> None:
    world.push(fleet())
    await world.reconcile(requested_at="2026-12-02T08:00:00.123456Z")
    assert world.status.last_handled_reconcile_at == "2026-12-02T08:00:00.123456Z"


# --- changes --------------------------------------------------------------------------------------------------------


async def test_a_no_op_commit_writes_nothing(world: World) -> None:
    await applied(world)
    rev = world.push(fleet())
    outcome = await world.reconcile()
    assert world.cluster.writes == []
    assert world.status.last_applied_revision == rev
    assert world.status.last_plan is not None
    assert world.status.last_plan.unchanged == FLEET
    assert [e.reason for e in outcome.events] == ["Applied"]  # one Event per applied revision


async def test_a_memory_change_patches_only_that_vm_in_place(world: World) -> None:
    await applied(world)
    before = world.spec_of("web01")
    world.push(fleet(web01={"memory_mb": 3072}))
    await world.reconcile()
    assert world.cluster.writes == [("patch", "web01")]
    after = world.spec_of("web01")
    assert (after["memoryMiB"], after["vmid"], after["image"]) == (3072, before["vmid"], before["image"])
    assert world.status.last_plan is not None
    assert world.status.last_plan.updated == ["web01"]


async def test_an_image_change_reimages_only_its_vms_and_never_a_protected_one(world: World) -> None:
    await applied(world)
    old_web02 = world.spec_of("web02")["image"]
    world.push(fleet(), web="web-v2")
    await world.reconcile()
    assert world.cluster.writes == [("patch", "web01")]  # db01 uses the db image; web02 is protected
    assert world.spec_of("web01")["image"]["source"].startswith(store_path("web", "web-v2"))
    assert world.spec_of("web02")["image"] == old_web02
    plan = world.status.last_plan
    assert plan is not None
    assert (plan.reimaged, plan.unchanged) == (["web01"], ["db01"])
    assert [(b.name, b.reason.split(":")[0]) for b in plan.blocked] == [("web02", "protected")]
    assert "1 blocked" in world.message("Applied")
    # the protected VM still runs the old web image: its GC root stays with the new ones
    assert world.builder.roots[world.ref().key] == {
        store_path("web", "web-v1"),
        store_path("web", "web-v2"),
        store_path("db", "db-v1"),
    }
    # the held image is reported, not a reason to be not Ready: the protected VM is left as it is
    world.cluster.mark_ready()
    await world.reconcile()
    assert world.cond("Ready") == ("True", "Succeeded")
    world.push(fleet(web02=None), web="web-v2")  # web02 left the flake: not pruned (protected), still rooted
    await world.reconcile()
    assert store_path("web", "web-v1") in world.builder.roots[world.ref().key]


# --- a commit is applied whole or not at all ------------------------------------------------------------------------


async def assert_nothing_changed(world: World, applied_rev: str, reason: str) -> Outcome:
    outcome = await world.reconcile()
    assert world.cluster.writes == []
    assert world.status.last_applied_revision == applied_rev
    assert world.cond("Applied") == ("False", reason)
    assert world.cond("Ready") == ("False", reason)
    assert world.cond("Stalled") == ("True", reason)
    assert f"keep running as applied from {applied_rev[:12]}" in world.message("Ready")
    assert outcome.stall
    assert outcome.retry is None
    assert [e.type for e in outcome.events] == ["Warning"]
    return outcome


async def test_an_evaluation_error_changes_nothing(world: World) -> None:
    rev = await applied(world)
    world.push(None, eval_error=captured_eval_error())
    await assert_nothing_changed(world, rev, "EvaluationFailed")
    assert "undefined variable 'memory'" in world.message("Ready")
    assert len(world.builder.builds()) == 1


async def test_an_invalid_vm_changes_nothing_and_names_the_vm_and_field(world: World) -> None:
    rev = await applied(world)
    world.push(captured_eval("invalid-vm"))
    await assert_nothing_changed(world, rev, "InvalidVM")
    assert "vms." in world.message("Ready")
    assert len(world.builder.builds()) == 1


async def test_a_duplicate_vmid_in_the_flake_changes_nothing(world: World) -> None:
    rev = await applied(world)
    world.push(captured_eval("duplicate-vmid"))
    await assert_nothing_changed(world, rev, "DuplicateVMID")


async def test_a_vmid_of_another_gitrepos_vm_changes_nothing(world: World) -> None:
    rev = await applied(world)
    world.cluster.add(
        VMS,
        {
            "metadata": {
                "name": "other01",
                "labels": {"proxnix.io/gitrepo": "other"},
                "ownerReferences": [
                    {"kind": "GitRepo", "name": "other", "uid": OTHER_UID, "controller": True}
                ],
            },
            "spec": {"node": "pve1", "vmid": 120},
        },
    )
    world.push(fleet(web01={"vm_id": 120}))
    await assert_nothing_changed(world, rev, "DuplicateVMID")
    assert "other01 (controlled by GitRepo other)" in world.message("Ready")


async def test_an_unknown_image_type_changes_nothing(world: World) -> None:
    rev = await applied(world)
    world.push(captured_eval("unknown-image"))
    await assert_nothing_changed(world, rev, "UnknownImageType")


async def test_an_unknown_node_changes_nothing(world: World) -> None:
    rev = await applied(world)
    world.push(fleet(db01={"node": "pve9"}))
    await assert_nothing_changed(world, rev, "UnknownNode")


async def test_a_build_failure_changes_nothing(world: World) -> None:
    rev = await applied(world)
    new = world.push(fleet(), web="web-v2")
    world.builder.commits[new].build_error = "builder for '/nix/store/x-web.drv' failed with exit code 1"
    await assert_nothing_changed(world, rev, "BuildFailed")
    assert world.cond("BuildFailed") == ("True", "BuildFailed")
    assert world.builder.roots[world.ref().key] == {store_path("web", "web-v1"), store_path("db", "db-v1")}


async def test_the_same_problem_met_again_posts_no_second_event(world: World) -> None:
    await applied(world)
    world.push(captured_eval("invalid-vm"))
    await world.reconcile()
    again = await world.reconcile()
    assert again.events == []


# --- fetch ------------------------------------------------------------------------------------------------------------


async def test_a_failed_fetch_is_retried_and_changes_nothing(world: World) -> None:
    rev = await applied(world)
    world.source.error = GitError(GitErrorKind.NETWORK, "fetch branch main: Connection refused")
    outcome = await world.reconcile()
    assert world.cluster.writes == []
    assert world.cond("FetchFailed") == ("True", "NetworkError")
    assert world.cond("SourceFetched") == ("False", "NetworkError")
    assert world.cond("Ready") == ("False", "NetworkError")
    assert outcome.retry is not None
    assert outcome.retry.policy is SOURCE_UNAVAILABLE
    assert world.status.last_applied_revision == rev


async def test_a_failed_checkout_is_retried_and_changes_nothing(world: World) -> None:
    rev = await applied(world)
    world.push(fleet(web01={"memory_mb": 3072}))
    world.source.checkout_error = GitError(
        GitErrorKind.AUTH, "fetch submodules: Permission denied (publickey)"
    )
    outcome = await world.reconcile()
    assert world.cluster.writes == []
    assert world.cond("FetchFailed") == ("True", "AuthenticationFailed")
    assert world.cond("Ready") == ("False", "AuthenticationFailed")
    assert outcome.retry is not None
    assert outcome.retry.policy is SOURCE_UNAVAILABLE
    assert world.status.last_applied_revision == rev


async def test_credentials_come_from_the_secret_and_a_missing_secret_is_retried(tmp_path: Path) -> None:
    world = World(tmp_path, secretRef={"name": "git-creds"})
    world.push(fleet())
    outcome = await world.reconcile()
    assert world.cond("FetchFailed") == ("True", "SecretNotFound")
    assert outcome.retry is not None
    assert outcome.retry.policy is SOURCE_UNAVAILABLE
    assert world.source.calls == []
    world.cluster.secrets["git-creds"] = {"username": b"bot", "password": b"s3cret"}
    await world.reconcile()
    creds = world.source.credentials[-1]
    assert creds is not None
    assert (creds.username, creds.password) == ("bot", "s3cret")
    assert "s3cret" not in world.status.model_dump_json()


async def test_an_api_error_while_applying_is_retried(world: World) -> None:
    world.push(fleet())
    world.cluster.fail.add("create")
    outcome = await world.reconcile()
    assert world.cond("Applied") == ("False", "ApplyFailed")
    assert outcome.retry is not None
    assert outcome.retry.policy is APPLY_FAILED
    assert world.status.last_applied_revision == ""
    world.cluster.fail.clear()
    await world.reconcile()
    assert world.cluster.vm_names() == FLEET


# --- ownership --------------------------------------------------------------------------------------------------------


async def test_a_same_name_proxmoxvm_not_owned_is_never_overwritten(world: World) -> None:
    hand_written = {"metadata": {"name": "web01"}, "spec": {"node": "pve1", "vmid": 300, "memoryMiB": 512}}
    world.cluster.add(VMS, hand_written)
    world.push(fleet())
    first = await world.reconcile()
    assert ("patch", "web01") not in world.cluster.writes
    assert world.spec_of("web01") == hand_written["spec"]
    plan = world.status.last_plan
    assert plan is not None
    assert [b.name for b in plan.blocked] == ["web01"]
    assert "not overwritten" in plan.blocked[0].reason
    assert [e.name for e in world.status.inventory] == ["db01", "web02"]
    # the flake's web01 was never applied: not Ready (even once the others are), and it says which and why
    world.cluster.mark_ready("db01", "web02")
    outcome = await world.reconcile()
    assert world.cond("Ready") == ("False", "VMsNotApplied")
    assert "1 VMs of" in world.message("Ready")
    assert "web01 (a ProxmoxVM of this name exists and is not created by a GitRepo" in world.message("Ready")
    assert ("Warning", "VMsNotApplied") in [(e.type, e.reason) for e in first.events]
    assert outcome.events == []  # the same problem again: no second Event


async def test_a_vm_whose_node_changed_is_not_applied_and_not_ready(world: World) -> None:
    await applied(world)
    world.push(fleet(web01={"node": "pve2"}))
    await world.reconcile()
    world.cluster.mark_ready()
    await world.reconcile()
    assert world.spec_of("web01")["node"] == "pve1"
    assert world.cond("Ready") == ("False", "VMsNotApplied")
    assert "web01 (node pve1 → pve2: a ProxmoxVM cannot change node or VMID" in world.message("Ready")
    world.push(fleet())  # back to what is applied: Ready again
    await world.reconcile()
    assert world.cond("Ready") == ("True", "Succeeded")


async def test_an_orphan_of_a_deleted_gitrepo_is_adopted(world: World) -> None:
    world.push(fleet())
    await world.reconcile()
    web = world.cluster.vm("web01")
    assert web is not None
    web["metadata"]["ownerReferences"] = []  # orphaned (deletionPolicy Orphan); the label stays
    world.cluster.writes.clear()
    await world.reconcile()
    assert world.cluster.writes == [("patch", "web01")]
    adopted = world.cluster.vm("web01")
    assert adopted is not None
    assert adopted["metadata"]["ownerReferences"][0]["uid"] == UID


async def test_an_orphan_of_another_gitrepo_is_never_adopted(world: World) -> None:
    world.push(fleet())
    await world.reconcile()
    web = world.cluster.vm("web01")
    assert web is not None
    web["metadata"]["ownerReferences"] = []  # orphaned by a deleted GitRepo "other"
    web["metadata"]["labels"] = {"proxnix.io/gitrepo": "other"}
    world.cluster.writes.clear()
    await world.reconcile()
    assert ("patch", "web01") not in world.cluster.writes
    after = world.cluster.vm("web01")
    assert after is not None
    assert after["metadata"]["ownerReferences"] == []
    assert after["metadata"]["labels"] == {"proxnix.io/gitrepo": "other"}
    assert world.cond("Ready")[0] == "False"
    assert "web01" in world.message("Ready")
    assert "orphan of GitRepo other" in world.message("Ready")


# --- prune ------------------------------------------------------------------------------------------------------------


async def test_a_vm_that_left_the_flake_is_pruned(world: World) -> None:
    await applied(world)
    world.push(fleet(db01=None))
    await world.reconcile()
    assert world.cluster.writes == [("delete", "db01")]
    assert world.status.last_plan is not None
    assert world.status.last_plan.pruned == ["db01"]
    assert [e.name for e in world.status.inventory] == ["web01", "web02"]


async def test_a_protected_vm_is_never_pruned(world: World) -> None:
    await applied(world)
    world.push(fleet(web02=None))
    await world.reconcile()
    assert world.cluster.writes == []
    plan = world.status.last_plan
    assert plan is not None
    assert [(b.name, b.reason.split(":")[0]) for b in plan.blocked] == [("web02", "protected")]


async def test_prune_false_keeps_what_left_the_flake(tmp_path: Path) -> None:
    world = World(tmp_path, prune=False)
    await applied(world)
    world.push(fleet(db01=None))
    await world.reconcile()
    assert world.cluster.writes == []


async def test_a_prune_over_the_limit_is_held_until_its_revision_is_confirmed(world: World) -> None:
    await applied(world)
    empty = world.push(captured_eval("empty"))
    outcome = await world.reconcile()
    assert world.cluster.writes == []
    assert world.cond("Applied") == ("False", "PruneLimitExceeded")
    assert world.cond("Stalled") == ("True", "PruneLimitExceeded")
    assert f"proxnix.io/confirm-prune={empty}" in world.message("Ready")
    assert outcome.stall
    assert world.status.last_plan is not None
    assert world.status.last_plan.held
    assert world.status.last_plan.pruned == []  # nothing happened: the would-be prunes are listed as held
    assert {b.name: b.reason.split(":")[0] for b in world.status.last_plan.blocked} == {
        "db01": "held",
        "web01": "held",
        "web02": "protected",
    }
    await world.reconcile(confirm_prune=revision(999))  # another revision confirmed: still held
    assert world.cluster.writes == []
    await world.reconcile(confirm_prune=empty)
    assert world.cluster.writes == [("delete", "db01"), ("delete", "web01")]  # web02 is protected
    assert world.status.last_applied_revision == empty


# --- one reconcile at a time ----------------------------------------------------------------------------------------


async def test_a_reconcile_that_waited_starts_from_the_status_the_previous_one_reported(world: World) -> None:
    world.push(fleet())
    stale = world.ref()  # read before the first reconcile wrote its status
    await world.reconcile()
    again = await world.reconciler.reconcile(stale)
    assert again.events == []  # not "applied" a second time
    assert isinstance(again.status, GitRepoStatus)
    assert again.status.last_plan is not None
    assert again.status.last_plan.created == FLEET


async def test_the_timer_skips_a_gitrepo_reconciled_while_it_waited(world: World) -> None:
    world.push(fleet())
    await world.reconcile()
    calls = len(world.source.calls)
    skipped = await world.reconciler.reconcile(world.ref(), when_due=True)
    assert (skipped.status, skipped.events) == (None, [])
    assert len(world.source.calls) == calls


async def test_pushes_during_a_build_are_not_lost_and_only_the_newest_is_built_next(world: World) -> None:
    first = world.push(fleet())
    second = world.push(fleet(web01={"memory_mb": 2500}))
    newest = world.push(fleet(web01={"memory_mb": 3072}))
    world.source.push("main", first)  # the head when the first reconcile fetches
    original_build = world.builder.build

    async def build_while_pushed(*args: Any, **kwargs: Any) -> Any:
        world.source.push("main", second)  # two pushes land while nix builds
        world.source.push("main", newest)
        return await original_build(*args, **kwargs)

    world.builder.build = build_while_pushed  # type: ignore[method-assign]
    await world.reconcile()
    assert world.status.last_applied_revision == first
    world.builder.build = original_build  # type: ignore[method-assign]
    await world.reconcile()  # the run kopf makes for the newer webhook annotations
    assert world.status.last_applied_revision == newest
    assert world.builder.builds() == [first, newest]  # the intermediate commit is skipped, not queued
    assert world.spec_of("web01")["memoryMiB"] == 3072


# --- bursts of pushes -----------------------------------------------------------------------------------------------


async def test_a_single_push_is_built_at_once(world: World) -> None:
    rev = world.push(fleet())
    world.mark("push-1")
    await world.reconcile(requested_at="push-1")
    assert world.timer.names() == ["fetch", "eval", "build", "apply"]  # no waiting
    assert (world.fetches(), world.builder.builds()) == (1, [rev])


async def test_pushes_arriving_during_a_run_are_evaluated_and_built_once_at_the_newest(world: World) -> None:
    world.push(fleet())
    world.mark("push-1")
    later = [fleet(web01={"memory_mb": 2048 + 256 * n}) for n in (1, 2, 3)]
    original_fetch, original_get = world.source.fetch, world.cluster.get_object

    async def fetch_while_pushed(*args: Any, **kwargs: Any) -> Any:
        fetched = await original_fetch(*args, **kwargs)
        if len(later) == 3:  # the second push lands while the first fetch runs
            world.push(later.pop(0))
            world.mark("push-2")
        return fetched

    async def get_while_pushed(*args: Any, **kwargs: Any) -> Any:
        if len(later) < 3 and later:  # two more while the reconcile waits for the pushes to stop
            world.push(later.pop(0))
            world.mark(f"push-{world.n}")
        return await original_get(*args, **kwargs)

    world.source.fetch = fetch_while_pushed  # type: ignore[method-assign]
    world.cluster.get_object = get_while_pushed  # type: ignore[method-assign]
    await world.reconcile(requested_at="push-1")
    newest = revision(4)
    assert world.builder.evaluations() == [newest]
    assert world.builder.builds() == [newest]
    assert world.status.last_applied_revision == newest
    assert world.spec_of("web01")["memoryMiB"] == 2048 + 256 * 3
    assert world.timer.names() == ["fetch", "settle", "eval", "build", "apply"]
    assert world.fetches() == 2  # once at the start, once when the pushes stopped
    assert dict(world.timer.steps)["settle"] >= 0.05  # at least one quiet period


async def test_a_steady_stream_of_pushes_is_waited_for_at_most_the_limit(world: World) -> None:
    world.reconciler.burst_limit = 0.3
    world.push(fleet())
    world.mark("push-1")
    original_get = world.cluster.get_object

    async def always_pushed(*args: Any, **kwargs: Any) -> Any:
        world.push(fleet(web01={"memory_mb": 2048 + world.n}))
        world.mark(f"push-{world.n}")
        return await original_get(*args, **kwargs)

    world.cluster.get_object = always_pushed  # type: ignore[method-assign]
    started = time.monotonic()
    await world.reconcile(requested_at="push-1")
    assert 0.3 <= dict(world.timer.steps)["settle"] < time.monotonic() - started
    assert len(world.builder.builds()) == 1
    assert world.status.last_applied_revision == world.builder.builds()[0] != revision(1)


async def test_a_gitrepo_that_cannot_be_read_is_built_without_waiting(world: World) -> None:
    rev = world.push(fleet())
    world.mark("push-2")  # newer than the run's, but the read fails
    world.cluster.fail.add("get")
    await world.reconcile(requested_at="push-1")
    assert "settle" not in world.timer.names()
    assert world.builder.builds() == [rev]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"spec": {"suspend": True}}, "the GitRepo was suspended"),
        ({"metadata": {"deletionTimestamp": "2026-12-02T12:00:00Z"}}, "the GitRepo is being deleted"),
    ],
)
async def test_a_gitrepo_suspended_or_deleted_while_pushes_settle_applies_nothing(
    world: World, change: dict[str, Any], why: str
) -> None:
    world.push(fleet())
    world.mark("push-1")
    original_get = world.cluster.get_object

    async def changed_while_waiting(*args: Any, **kwargs: Any) -> Any:
        live = await original_get(*args, **kwargs)
        if live is not None and world.n == 1:  # a second push, then the user's change, during the wait
            world.push(fleet(web01={"memory_mb": 4096}))
            world.mark("push-2")
            live = await original_get(*args, **kwargs)
            assert live is not None
            live.setdefault("spec", {}).update(change.get("spec", {}))
            live["metadata"].update(change.get("metadata", {}))
        return live

    world.cluster.get_object = changed_while_waiting  # type: ignore[method-assign]
    await world.reconcile(requested_at="push-1")
    assert world.builder.builds() == []
    assert world.cluster.writes == []  # no ProxmoxVM written
    assert world.cond("Ready")[1] == "Superseded"
    assert why in world.message("Ready")
