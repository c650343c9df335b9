"""Deleting a GitRepo (in-memory Kubernetes): Orphan (the default) takes the GitRepo's ownerReference off its
ProxmoxVMs — so the garbage collector has nothing to cascade to — and deletes nothing; Delete deletes them; a failure
keeps the finalizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxnix.api.gitrepo import GitRepoSpec, GitRepoStatus
from proxnix.reconcile.gitrepo import GitRepoReconciler, GitRepoRef
from proxnix.reconcile.outcome import DELETE_FAILED, VMS_DELETING
from tests.support.fake_gitrepo import VMS, FakeBuilder, FakeCluster, FakeSource

UID = "3f1c0d2e-0000-4000-8000-000000000001"
OTHER_UID = "3f1c0d2e-0000-4000-8000-000000000002"
ME = {"apiVersion": "proxnix.io/v1alpha1", "kind": "GitRepo", "name": "infra", "uid": UID, "controller": True}
SOMEONE = {"apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "uid": OTHER_UID}


def vm(name: str, *owners: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"proxnix.io/gitrepo": "infra"},
            "ownerReferences": list(owners),
        },
        "spec": {"node": "pve1", "vmid": 100 + len(name)},
    }


def setup(
    tmp: Path, **spec: Any
) -> tuple[GitRepoReconciler, FakeCluster, FakeSource, FakeBuilder, GitRepoRef]:
    cluster = FakeCluster()
    cluster.add(VMS, vm("web01", ME))
    cluster.add(VMS, vm("db01", SOMEONE, ME))
    cluster.add(VMS, vm("hand", {**ME, "uid": OTHER_UID, "name": "other"}))  # another GitRepo's
    source, builder = FakeSource(tmp), FakeBuilder()
    ref = GitRepoRef(
        "default",
        "infra",
        UID,
        1,
        GitRepoSpec.model_validate({"url": "file:///srv/git/fleet.git", **spec}),
        GitRepoStatus(),
    )
    return GitRepoReconciler(cluster, source, builder), cluster, source, builder, ref


async def test_orphan_removes_only_this_gitrepos_owner_reference_and_deletes_nothing(tmp_path: Path) -> None:
    reconciler, cluster, source, _, ref = setup(tmp_path)
    outcome = await reconciler.delete(ref)
    assert outcome.done
    assert ("delete", "web01") not in cluster.writes
    assert ("delete", "db01") not in cluster.writes
    assert cluster.vm_names() == ["db01", "hand", "web01"]
    web, db, hand = (cluster.vm(n) for n in ("web01", "db01", "hand"))
    assert web is not None
    assert db is not None
    assert hand is not None
    assert "ownerReferences" not in web["metadata"]
    assert db["metadata"]["ownerReferences"] == [SOMEONE]
    assert hand["metadata"]["ownerReferences"][0]["uid"] == OTHER_UID  # not ours: untouched
    assert ("patch", "hand") not in cluster.writes
    assert web["metadata"]["labels"] == {"proxnix.io/gitrepo": "infra"}  # adoptable later
    assert [e.reason for e in outcome.events] == ["Orphaned"]
    assert source.forgotten == [ref.key]


async def test_delete_policy_deletes_the_owned_proxmoxvms_only(tmp_path: Path) -> None:
    reconciler, cluster, _, _, ref = setup(tmp_path, deletionPolicy="Delete")
    outcome = await reconciler.delete(ref)
    assert outcome.done
    assert cluster.vm_names() == ["hand"]
    assert sorted(cluster.writes) == [("delete", "db01"), ("delete", "web01")]
    assert [e.reason for e in outcome.events] == ["Deleted"]


async def test_a_failed_orphaning_keeps_the_finalizer(tmp_path: Path) -> None:
    reconciler, cluster, source, _, ref = setup(tmp_path)
    cluster.fail.add("patch")
    outcome = await reconciler.delete(ref)
    assert not outcome.done
    assert outcome.retry is not None
    assert outcome.retry.policy is DELETE_FAILED
    assert source.forgotten == []


async def test_delete_policy_keeps_the_finalizer_until_its_proxmoxvms_are_gone(tmp_path: Path) -> None:
    """ProxmoxVMs have finalizers: while their VM controller works, the GitRepo stays, so that each VM's delete
    handler still finds it asking for deletion (a GitRepo already gone reads as a garbage-collector cascade)."""
    reconciler, cluster, _, _, ref = setup(tmp_path, deletionPolicy="Delete")
    cluster.finalizers = True
    first = await reconciler.delete(ref)
    assert not first.done
    assert first.retry is not None
    assert first.retry.policy is VMS_DELETING
    assert "db01, web01" in first.retry.reason
    assert [e.reason for e in first.events] == ["Deleted"]
    again = await reconciler.delete(ref)  # still deleting: nothing asked twice, no second Event
    assert not again.done
    assert again.events == []
    assert sorted(cluster.writes) == [("delete", "db01"), ("delete", "web01")]
    cluster.finish_deletions()
    assert (await reconciler.delete(ref)).done
