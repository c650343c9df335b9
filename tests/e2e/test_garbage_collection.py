"""Owner references and garbage collection on the real control plane: what deleting a ProxmoxVM, a ProxmoxNode or
a whole namespace does to the VMs on the nodes. Nothing is destroyed by a cascade the user did not ask for.

The garbage collector works in the background (tens of seconds for custom kinds), so each test hangs a ConfigMap
on the object it deletes, owned by it: once that ConfigMap is gone, the collector has handled the deletion, and
what is still there was left alone on purpose — no sleeping on a guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxnix_testbed.controlplane import ControlPlane
from proxnix_testbed.sandbox import Sandbox, SandboxConfig, running_sandbox
from tests.e2e.conftest import GC_WITHIN, node_config, vm_manifest, wait_phase

pytestmark = pytest.mark.e2e


@pytest.fixture
def gc_sandbox(tmp_path: Path, control_plane: ControlPlane, namespace: str) -> Iterator[Sandbox]:
    config = SandboxConfig(
        dir=tmp_path / "sb", nodes=1, namespace=namespace, resync_interval=3.0, control_plane=control_plane
    )
    with running_sandbox(config) as sb:
        yield sb


def _owned_probe(sb: Sandbox, kind: str, name: str) -> str:
    """A ConfigMap owned by `kind/name` (the collector's witness); returns its name."""
    owner = sb.get(kind, name)
    assert owner is not None
    probe = f"owned-by-{kind}-{name}"
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": probe,
            "namespace": sb.config.namespace,
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": name,
                    "uid": owner["metadata"]["uid"],
                }
            ],
        },
    }
    sb.apply(json.dumps(body))
    return probe


def _collected(sb: Sandbox, probe: str) -> bool:
    return sb.get("configmap", probe) is None


def _vm(sb: Sandbox, name: str, vmid: int, image: Path, **spec: Any) -> None:
    sb.apply(vm_manifest(name, vmid, image, namespace=sb.config.namespace, **spec))


def test_deleting_a_proxmoxvm_destroys_only_what_its_policy_says(gc_sandbox: Sandbox) -> None:
    sb = gc_sandbox
    image = sb.make_image("gc", "1G")
    _vm(sb, "keep", 401, image, deletionPolicy="Retain")
    _vm(sb, "drop", 402, image)
    for name in ("keep", "drop"):
        wait_phase(sb, name, "Running", 60)
    probes = [_owned_probe(sb, "proxmoxvm", name) for name in ("keep", "drop")]

    sb.kubectl("delete", "proxmoxvm", "keep", "drop", "--wait=false")
    sb.wait_for(lambda: all(_collected(sb, p) for p in probes), GC_WITHIN, "the owned ConfigMaps collected")
    sb.wait_for(lambda: sb.get("proxmoxvm", "drop") is None, 60, "drop gone")
    assert sb.get("proxmoxvm", "keep") is None
    assert node_config(sb, "pve1", 401) is not None  # Retain: the VM outlives its object
    assert node_config(sb, "pve1", 402) is None  # Delete: destroyed, as asked


def test_deleting_a_proxmoxnode_leaves_its_vms_and_their_objects(gc_sandbox: Sandbox) -> None:
    sb = gc_sandbox
    image = sb.make_image("gc", "1G")
    _vm(sb, "tenant", 403, image)
    wait_phase(sb, "tenant", "Running", 60)
    before = node_config(sb, "pve1", 403)
    probe = _owned_probe(sb, "proxmoxnode", "pve1")

    sb.kubectl("delete", "proxmoxnode", "pve1", "--wait=false")
    sb.wait_for(lambda: _collected(sb, probe), GC_WITHIN, "the node's ConfigMap collected")
    sb.wait_for(lambda: sb.get("proxmoxnode", "pve1") is None, 60, "the ProxmoxNode gone")
    vm = sb.get("proxmoxvm", "tenant")
    assert vm is not None
    assert not vm["metadata"].get("ownerReferences")  # a VM belongs to no node object: no cascade
    assert not vm["metadata"].get("deletionTimestamp")
    assert node_config(sb, "pve1", 403) == before

    # Registering the node again takes the VM back without touching it.
    sb.apply(sb.node_manifests())
    wait_phase(sb, "tenant", "Running", 60)
    assert node_config(sb, "pve1", 403) == before


def test_deleting_the_namespace_keeps_retained_and_protected_vms(
    gc_sandbox: Sandbox, control_plane: ControlPlane
) -> None:
    sb = gc_sandbox
    image = sb.make_image("gc", "1G")
    _vm(sb, "retained", 404, image, deletionPolicy="Retain")
    _vm(sb, "guarded", 405, image, protected=True)
    for name in ("retained", "guarded"):
        wait_phase(sb, name, "Running", 60)
    before = {vmid: node_config(sb, "pve1", vmid) for vmid in (404, 405)}

    ns = sb.config.namespace
    control_plane.kubectl("delete", "namespace", ns, "--wait=false")
    # The objects carry the operator's finalizer: the namespace goes only because the operator lets them go.
    sb.wait_for(
        lambda: control_plane.kubectl("get", "namespace", ns, check=False).returncode != 0,
        120,
        f"namespace {ns} gone",
    )
    assert {vmid: node_config(sb, "pve1", vmid) for vmid in (404, 405)} == before
