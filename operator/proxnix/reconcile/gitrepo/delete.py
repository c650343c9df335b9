"""Deleting a GitRepo: its ProxmoxVMs are orphaned (deletionPolicy Orphan, the default) or deleted (Delete) before
its finalizer goes.

Orphan removes this GitRepo's ownerReference from each ProxmoxVM it controls (the `proxnix.io/gitrepo` label stays,
so another GitRepo may adopt them): once the GitRepo is gone, Kubernetes' garbage collector finds no dependent to
cascade to, and the VMs keep running. Delete deletes the ProxmoxVMs; each VM then follows its own deletionPolicy, and
the finalizer stays until they are gone: a VM's delete handler reads the GitRepo to tell a requested deletion from a
garbage-collector cascade (`proxnix.reconcile.vm.delete.kept_for_gitrepo`), and a GitRepo already gone reads as the
latter. Either way the finalizer stays until every owned ProxmoxVM was handled.
"""

from __future__ import annotations

from proxnix.adapters.kube import KubeError
from proxnix.api.gitrepo import GitRepoDeletionPolicy
from proxnix.reconcile.gitrepo.ports import Cluster
from proxnix.reconcile.gitrepo.ref import GitRepoRef
from proxnix.reconcile.gitrepo.steps import VMS
from proxnix.reconcile.outcome import DELETE_FAILED, VMS_DELETING, Event, Outcome, Retry, short
from proxnix.sources.flake.plan import Existing


async def delete_gitrepo(cluster: Cluster, ref: GitRepoRef) -> Outcome:
    """Orphan or delete every ProxmoxVM the GitRepo controls; `done` once all were handled."""
    policy = ref.spec.deletion_policy
    handled: list[str] = []
    try:
        for obj in await cluster.list_objects(VMS, ref.namespace):
            existing = Existing.from_object(obj)
            if not existing.owned_by(ref.owner) or existing.deleting:
                continue
            if policy is GitRepoDeletionPolicy.DELETE:
                await cluster.delete_object(VMS, ref.namespace, existing.name)
            else:
                others = [dict(o) for o in existing.owner_references if o.get("uid") != ref.uid]
                patch = {"metadata": {"ownerReferences": others or None}}
                await cluster.patch_object(VMS, ref.namespace, existing.name, patch)
            handled.append(existing.name)
        # Delete: the finalizer stays while any owned ProxmoxVM is still there (its VM controller is at it).
        pending = (
            sorted(
                Existing.from_object(obj).name
                for obj in await cluster.list_objects(VMS, ref.namespace)
                if Existing.from_object(obj).owned_by(ref.owner)
            )
            if policy is GitRepoDeletionPolicy.DELETE
            else []
        )
    except KubeError as exc:
        message = (
            f"{policy.value} of the ProxmoxVMs failed ({short(exc)}); the GitRepo stays until it succeeds"
        )
        return Outcome(
            events=[Event("Warning", "DeleteFailed", message)],
            retry=Retry(DELETE_FAILED, message),
            done=False,
        )
    events = []
    if handled:
        names = ", ".join(sorted(handled))
        if policy is GitRepoDeletionPolicy.DELETE:
            events.append(Event("Normal", "Deleted", f"deleted {len(handled)} ProxmoxVMs: {names}"))
        else:
            events.append(
                Event(
                    "Normal", "Orphaned", f"{len(handled)} ProxmoxVMs left running, no longer owned: {names}"
                )
            )
    if pending:
        waiting = f"waiting for {len(pending)} ProxmoxVMs to be deleted: {', '.join(pending)}"
        return Outcome(events=events, retry=Retry(VMS_DELETING, waiting), done=False)
    return Outcome(events=events)
