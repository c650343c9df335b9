"""What the real API server enforces for proxnix, and what the operator meets there: the samples against the CRDs'
schemas, CEL rules (immutable vmid/node, cross-field rules), defaults filled in by the server, and RBAC — the
operator runs as its ServiceAccount, so a verb missing from its Role is a visible failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxnix_testbed.controlplane import ControlPlane, identities
from proxnix_testbed.sandbox import Sandbox, SandboxConfig, running_sandbox
from tests.e2e.conftest import condition

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"


def _in_namespace(path: Path, namespace: str) -> str:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    return yaml.safe_dump_all(docs)


def _vm(name: str, namespace: str, **spec: Any) -> str:
    body = {
        "apiVersion": "proxnix.io/v1alpha1",
        "kind": "ProxmoxVM",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"node": "pve1", "vmid": 500, "image": {"source": "/images/base.qcow2"}, **spec},
    }
    return json.dumps(body)


def test_valid_samples_are_accepted_and_invalid_ones_refused(
    control_plane: ControlPlane, namespace: str
) -> None:
    for path in sorted((SAMPLES / "valid").glob("*.yaml")):
        result = control_plane.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=_in_namespace(path, namespace), check=False
        )
        assert result.returncode == 0, f"{path.name}: {result.stderr}"
    invalid = sorted((SAMPLES / "invalid").glob("*.yaml"))
    assert invalid
    for path in invalid:
        result = control_plane.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=_in_namespace(path, namespace), check=False
        )
        assert result.returncode != 0, f"{path.name} was accepted"
        assert "Invalid value" in result.stderr or "Required value" in result.stderr, (
            path.name,
            result.stderr,
        )


def test_the_server_fills_in_the_schema_defaults(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.kubectl("apply", "-f", "-", input=_vm("plain", namespace))
    spec = json.loads(control_plane.kubectl("get", "pvm", "plain", "-n", namespace, "-o", "json").stdout)[
        "spec"
    ]
    assert spec["cores"] == 1
    assert spec["memoryMiB"] == 512
    assert spec["disk"] == {"slot": "scsi0"}
    assert spec["network"] == {"model": "virtio"}
    assert spec["runStrategy"] == "Always"
    assert spec["deletionPolicy"] == "Delete"


def test_cel_rules_refuse_a_vmid_or_node_change_and_cross_field_mistakes(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("apply", "-f", "-", input=_vm("web", namespace, disk={"sizeGiB": 8}))

    def patch(body: dict[str, Any]) -> Any:
        return control_plane.kubectl(
            "patch", "pvm", "web", "-n", namespace, "--type", "merge", "-p", json.dumps(body), check=False
        )

    vmid = patch({"spec": {"vmid": 501}})
    assert vmid.returncode != 0
    assert "vmid cannot be changed" in vmid.stderr
    node = patch({"spec": {"node": "pve2"}})
    assert node.returncode != 0
    assert "node cannot be changed" in node.stderr
    shrink = patch({"spec": {"disk": {"sizeGiB": 4}}})
    assert "disk.sizeGiB cannot shrink" in shrink.stderr
    gateway = patch({"spec": {"cloudInit": {"ipConfig": {"gateway": "192.0.2.1"}}}})
    assert "gateway is only allowed with a static address" in gateway.stderr
    duplicate = patch({"spec": {"tags": ["web", "web"]}})
    assert "Duplicate value" in duplicate.stderr
    # What is allowed still is: the object keeps its vmid and takes the change.
    assert patch({"spec": {"cores": 2, "disk": {"sizeGiB": 9}}}).returncode == 0
    spec = json.loads(control_plane.kubectl("get", "pvm", "web", "-n", namespace, "-o", "json").stdout)[
        "spec"
    ]
    assert (spec["vmid"], spec["node"], spec["cores"], spec["disk"]["sizeGiB"]) == (500, "pve1", 2, 9)


@pytest.fixture
def rbac_sandbox(tmp_path: Path, control_plane: ControlPlane, namespace: str) -> Iterator[Sandbox]:
    config = SandboxConfig(dir=tmp_path / "sb", nodes=1, namespace=namespace, control_plane=control_plane)
    with running_sandbox(config, operator=False) as sb:
        yield sb


def _without_secret_get(role: dict[str, Any]) -> dict[str, Any]:
    for rule in role["rules"]:
        if "secrets" in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "get"]
    role["rules"] = [rule for rule in role["rules"] if rule["verbs"]]  # a rule with no verb left is refused
    role["metadata"] = {"name": role["metadata"]["name"], "namespace": role["metadata"]["namespace"]}
    return role


def test_a_verb_missing_from_the_operators_role_is_a_visible_403(rbac_sandbox: Sandbox) -> None:
    sb = rbac_sandbox
    ns = sb.config.namespace
    role = json.loads(sb.kubectl("get", "role", identities.OPERATOR, "-n", ns, "-o", "json").out)
    sb.kubectl("replace", "-f", "-", input=json.dumps(_without_secret_get(role)))
    sb.start_operator()
    node = sb.wait_for(
        lambda: (o := sb.get("proxmoxnode", "pve1")) and condition(o, "Ready").get("status") == "False" and o,
        60,
        "pve1 not Ready",
    )
    ready = condition(node, "Ready")
    assert ready["reason"] == "SecretUnreadable"
    assert "403" in ready["message"]
    # The same operator, once the Role has the verb again, reads the Secret and reaches the node.
    identities.grant(sb.plane, [ns])  # type: ignore[arg-type]
    sb.wait_for(
        lambda: (o := sb.get("proxmoxnode", "pve1")) and condition(o, "Ready").get("status") == "True",
        90,
        "pve1 Ready with the verb restored",
    )
