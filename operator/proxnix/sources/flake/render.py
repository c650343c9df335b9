"""The renderer: one flake VM, its node and its built image → the ProxmoxVM object the GitRepo owns.

The object is labelled with its GitRepo (`proxnix.io/gitrepo`) and has an ownerReference with `controller: true` to
it; its image points at the built qcow2 and its sha256. Nothing that changes on every commit (the revision) is
written into the object, so a commit that changes nothing renders the same objects and patches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxnix.api import proxmoxvm
from proxnix.api.meta import API_VERSION, GROUP
from proxnix.api.proxmoxvm import CloudInitSpec, DiskSpec, ImageSpec, IpConfig, NetworkSpec, ProxmoxVMSpec
from proxnix.sources.flake.vms import FlakeVM

LABEL_GITREPO = f"{GROUP}/gitrepo"
"""Label on every ProxmoxVM a GitRepo renders: the GitRepo's name."""


@dataclass(frozen=True)
class Owner:
    """The GitRepo that owns the rendered objects."""

    namespace: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "GitRepo",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class Image:
    """A built image: the qcow2 file and its sha256."""

    path: str
    sha256: str


def render_spec(vm: FlakeVM, node: str, image: Image) -> ProxmoxVMSpec:
    """The ProxmoxVM spec of one flake VM."""
    cloud_init = None
    if vm.cloud_init is not None:
        cloud_init = CloudInitSpec(
            storage=vm.cloud_init,
            user=vm.cloud_init_user,
            ssh_authorized_keys=list(vm.ssh_authorized_keys),
            ip_config=vm.ip_config or IpConfig(),
        )
    return ProxmoxVMSpec(
        node=node,
        vmid=vm.vm_id,
        name=vm.name,
        cores=vm.cores,
        sockets=vm.sockets,
        memory_mib=vm.memory_mb,
        disk=DiskSpec(size_gib=vm.disk_gb, storage=vm.storage_location, slot=vm.disk_slot),
        network=NetworkSpec(bridge=vm.network_bridge, model=vm.net_model),
        scsi_hardware=vm.scsi_hw,
        image=ImageSpec(source=image.path, sha256=image.sha256),
        cloud_init=cloud_init,
        on_boot=vm.on_boot,
        tags=list(vm.tags),
        protected=vm.protected,
        run_strategy=vm.run_strategy,
        deletion_policy=vm.deletion_policy,
        reboot_for_pending_changes=vm.reboot_for_pending_changes,
    )


def render_object(vm: FlakeVM, node: str, image: Image, owner: Owner) -> dict[str, Any]:
    """The whole ProxmoxVM object to create (or whose spec, labels and ownerReference to patch)."""
    return {
        "apiVersion": API_VERSION,
        "kind": proxmoxvm.INFO.kind,
        "metadata": {
            "name": vm.object_name,
            "namespace": owner.namespace,
            "labels": {LABEL_GITREPO: owner.name},
            "ownerReferences": [owner.reference()],
        },
        "spec": render_spec(vm, node, image).to_wire(),
    }
