"""ProxmoxVM deletion: destroy the VM when the policy allows and it is provably ours; keep it on any doubt.

Order of refusals: deletionPolicy Retain and spec.protected keep the VM; an unavailable node or an unreadable (or
still-being-created) VM keeps the finalizer and retries; a VM without our marker, or with Proxmox protection, is
left on the node and the object goes. Only then is the VM stopped and destroyed with its disks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from proxnix.api.gitrepo import GitRepoDeletionPolicy
from proxnix.api.proxmoxvm import DeletionPolicy
from proxnix.proxmox.errors import NotOwned, ProtectionEnabled, ProxmoxError
from proxnix.reconcile.outcome import (
    DELETE_FAILED,
    DELETE_NODE_MISSING,
    DELETE_UNJUDGED,
    Event,
    Outcome,
    Retry,
    short,
)
from proxnix.reconcile.vm.ports import VmNodes
from proxnix.reconcile.vm.ref import VmRef, provisioned


def kept_for_gitrepo(vm: VmRef, gitrepo: Mapping[str, Any] | None) -> Outcome | None:
    """Keep the VM (as Retain) when the GitRepo that controls the object is being deleted or is gone and its
    deletionPolicy is not Delete: the garbage collector's cascade (a foreground delete of the GitRepo) must not
    destroy what the GitRepo's Orphan policy keeps. `gitrepo` is the controlling GitRepo as read now (None: gone).
    None when the VM follows its own deletionPolicy (not a GitRepo's, a live GitRepo's prune, or policy Delete)."""
    owner = vm.controlling_gitrepo
    if owner is None:
        return None
    name = owner.get("name", "")
    vmid = vm.spec.vmid
    metadata = (gitrepo or {}).get("metadata") or {}
    if gitrepo is None or metadata.get("uid") != owner.get("uid"):
        why = f"its GitRepo {name!r} is gone and its deletionPolicy is unknown"
    elif not metadata.get("deletionTimestamp"):
        return None
    else:
        policy = ((gitrepo.get("spec") or {}).get("deletionPolicy")) or GitRepoDeletionPolicy.ORPHAN.value
        if policy == GitRepoDeletionPolicy.DELETE.value:
            return None
        why = f"its GitRepo {name!r} is being deleted with deletionPolicy {policy}"
    return Outcome(events=[Event("Normal", "Retained", f"VM {vmid} kept on the node: {why}")])


async def delete_vm(nodes: VmNodes, vm: VmRef) -> Outcome:
    """The deletion step: `done` when the object may go (VM destroyed, gone, or kept on purpose), else a retry."""
    vmid = vm.spec.vmid
    if vm.spec.deletion_policy == DeletionPolicy.RETAIN:
        return Outcome(
            events=[Event("Normal", "Retained", f"VM {vmid} kept on the node (deletionPolicy Retain)")]
        )
    if vm.spec.protected:
        return Outcome(events=[Event("Normal", "Retained", f"VM {vmid} kept on the node: it is protected")])
    # The VM this object made: the status remembers where, even if the spec was edited since.
    if vm.status.vmid is not None and provisioned(vm.status):
        vmid = vm.status.vmid
    node = nodes.by_node_name(vm.namespace, vm.status.node) if vm.status.node else None
    node = node or nodes.get(vm.namespace, vm.spec.node)
    if node is None:
        message = (
            f"ProxmoxNode {vm.spec.node!r} is not available; VM {vmid} is kept until it is "
            "(remove the finalizer to abandon the VM)"
        )
        return Outcome(done=False, retry=Retry(DELETE_NODE_MISSING, message))
    try:
        inventory = await node.inventory(max_age=0)
        observed = inventory.vms.get(vmid)
        if observed is None:
            return Outcome(events=[Event("Normal", "AlreadyGone", f"VM {vmid} is not on the node")])
        if observed.config is None or (observed.lock == "create" and observed.ownership.owner is None):
            # Unreadable, or a create still in progress (its placeholder has no marker yet): wait and look again.
            return Outcome(
                done=False, retry=Retry(DELETE_UNJUDGED, f"VM {vmid} cannot be judged yet; retrying")
            )
        if not observed.ownership.owned_by(vm.uid):
            return Outcome(
                events=[
                    Event(
                        "Warning",
                        "NotOwned",
                        f"VM {vmid} on {node.node_name} was not created for this object; left untouched",
                    )
                ],
            )
        if observed.protection:
            return Outcome(
                events=[
                    Event(
                        "Warning",
                        "Retained",
                        f"VM {vmid} has Proxmox protection enabled; kept on the node",
                    )
                ],
            )
        started = time.monotonic()
        destroyed = await node.client.destroy_vm(vmid, vm.uid, stop_first=True)
        node.invalidate()
    except (NotOwned, ProtectionEnabled) as exc:
        # The driver's own guard refused: keep the VM and let the object go.
        return Outcome(events=[Event("Warning", exc.reason, f"VM {vmid} kept: {short(exc)}")])
    except ProxmoxError as exc:
        # Anything else (a lost connection, a lock, a credential problem) may clear: keep the finalizer.
        return Outcome(done=False, retry=Retry(DELETE_FAILED, short(exc)))
    took = time.monotonic() - started
    message = f"VM {vmid} destroyed on {node.node_name} ({took:.1f} s)" if destroyed else f"VM {vmid} gone"
    return Outcome(events=[Event("Normal", "Destroyed", message)])
