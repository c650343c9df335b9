"""End-to-end fixtures: the whole sandbox (pvesim nodes behind real sshd, the session's real Kubernetes control
plane, `proxnix operator` as a subprocess authenticated as its ServiceAccount) and helpers that look at it as a user
would: kubectl, and SSH to the nodes. Each module's sandbox works in namespace `default` and clears it when done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from proxnix_testbed.controlplane import ControlPlane
from proxnix_testbed.sandbox import REPO_CRDS, Sandbox, SandboxConfig, is_ready, running_sandbox
from tests.support.fleet import Fleet, applied_fleet
from tests.support.observe import condition, node_config, node_vmids

__all__ = ["condition", "node_config", "node_vmids"]

GC_WITHIN = 90  # the collector notices a new custom kind on a 30 s discovery resync; measured 21-41 s


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane) -> Iterator[Sandbox]:
    config = SandboxConfig(
        dir=tmp_path_factory.mktemp("sandbox"), nodes=2, resync_interval=3.0, control_plane=control_plane
    )
    with running_sandbox(config) as sb:
        sb.wait_for(
            lambda: all(is_ready(sb.get("proxmoxnode", n)) for n in ("pve1", "pve2")), 30, "nodes Ready"
        )
        yield sb
        assert not pruned_writes(sb), (
            "the API server pruned status fields the operator wrote (not in the CRD)"
        )


@pytest.fixture(scope="module")
def fleet(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The test fleet on the sandbox's git server, GitRepo `fleet` (default spec) applied and Ready at its first
    commit (tests/support/fleet.py); a module that needs another spec defines its own `fleet`."""
    with applied_fleet(sandbox, tmp_path_factory.mktemp("git") / "work") as applied:
        yield applied


@pytest.fixture(scope="module")
def image(sandbox: Sandbox) -> Path:
    return sandbox.make_image("base", "1G")


@pytest.fixture(scope="module")
def other_image(sandbox: Sandbox) -> Path:
    return sandbox.make_image("next", "1G")


def pruned_writes(sb: Sandbox) -> list[str]:
    """kopf's warnings that a merge patch did not stick: the API server pruned fields unknown to the schema."""
    return [
        line
        for log in sorted(sb.dir.glob("operator-*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if "finished with inconsistencies" in line
    ]


def vm_manifest(
    name: str, vmid: int, image: Path, node: str = "pve1", *, namespace: str = "default", **spec: Any
) -> str:
    body = {
        "apiVersion": "proxnix.io/v1alpha1",
        "kind": "ProxmoxVM",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"node": node, "vmid": vmid, "image": {"source": str(image)}, **spec},
    }
    return json.dumps(body)


def events(sb: Sandbox, name: str) -> list[dict[str, Any]]:
    out = sb.kubectl("get", "events", "-n", "default", "-o", "json").out
    return [e for e in json.loads(out)["items"] if e.get("involvedObject", {}).get("name") == name]


def wait_phase(sb: Sandbox, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until ProxmoxVM `name` reports `phase`; return the object."""
    found: dict[str, Any] = sb.wait_for(
        lambda: (o := sb.get("proxmoxvm", name)) and o["status"].get("phase") == phase and o,
        timeout,
        f"{name} {phase}",
    )
    return found


@contextmanager
def crd_rule_removed(sb: Sandbox, field: str) -> Iterator[None]:
    """The ProxmoxVM CRD without the CEL rule on spec.`field` (as a CRD from before the rule, or a server without
    CEL, would be) for the block; the generated CRDs are applied again afterwards."""
    assert sb.plane is not None
    path = (
        f"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/{field}/x-kubernetes-validations"
    )
    patch = json.dumps([{"op": "remove", "path": path}])
    sb.kubectl("patch", "crd", "proxmoxvms.proxnix.io", "--type", "json", "-p", patch)
    try:
        yield
    finally:
        sb.plane.install(REPO_CRDS)
