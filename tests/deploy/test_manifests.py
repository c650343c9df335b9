"""The k3s manifests, rendered offline: `kubectl kustomize` of the base, the examples and each component; every
built-in object valid against the Kubernetes 1.36 schemas (strict: no unknown fields), every proxnix object against the
generated CRDs, and the pod shaped as the README promises (two containers, probes, non-root, read-only root)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from proxnix.api import crdgen
from proxnix.api.meta import GROUP
from proxnix.cli import SUBCOMMANDS

K8S_VERSION = "1.36.0"
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
INFOS = {info.kind: info for info in crdgen.KINDS}
# Kinds that are neither built in nor ours: kopf's peering objects (its CRDs come with the base) and the
# Prometheus Operator's ServiceMonitor (components/monitoring).
FOREIGN_KINDS = {"KopfPeering", "ClusterKopfPeering", "ServiceMonitor"}


def kustomize(folder: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def with_component(tmp_path: Path, component: str) -> list[dict[str, Any]]:
    """The base plus one component, through an overlay in a temporary folder (as a user's overlay would be)."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    rel = os.path.relpath(MANIFESTS, overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{rel}/base]\ncomponents: [{rel}/components/{component}]\n"
    )
    return kustomize(overlay)


def validation_errors(doc: dict[str, Any]) -> list[str]:
    """Why `doc` would be refused: the proxnix CRD schema for our kinds, the Kubernetes schema for built-in ones."""
    if doc["apiVersion"].startswith("proxnix.io/"):
        crd = crdgen.crd_for(INFOS[doc["kind"]])
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    if doc["kind"] in FOREIGN_KINDS:
        return []
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}"]
    return []


def pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    spec: dict[str, Any] = sts["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS)


def test_base_installs_what_the_operator_needs(base: list[dict[str, Any]]) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in base}
    for info in crdgen.KINDS:
        assert ("CustomResourceDefinition", f"{info.plural}.{GROUP}") in kinds
    assert ("CustomResourceDefinition", "kopfpeerings.kopf.dev") in kinds
    assert ("KopfPeering", "proxnix") in kinds
    assert ("Namespace", "proxnix-system") in kinds
    assert {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} <= {
        k for k, _ in kinds
    }
    assert {"StatefulSet", "Service", "Ingress", "ConfigMap"} <= {k for k, _ in kinds}
    namespaced = [d for d in base if d["kind"] not in {"Namespace", "CustomResourceDefinition"}]
    namespaced = [d for d in namespaced if not d["kind"].startswith("Cluster")]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"proxnix-system"}


@pytest.mark.parametrize("overlay", ["base", "examples", "kvm", "remote-builders", "monitoring"])
def test_every_rendered_object_validates(overlay: str, tmp_path: Path) -> None:
    if overlay in {"base", "examples"}:
        docs = kustomize(MANIFESTS / overlay)
    else:
        docs = with_component(tmp_path, overlay)
    errors = [e for doc in docs for e in validation_errors(doc)]
    assert errors == []


def test_validation_catches_a_broken_object(base: list[dict[str, Any]]) -> None:
    """The check above can fail: an unknown field in the pod and a bad type in a proxnix object are both caught."""
    (sts,) = [d for d in base if d["kind"] == "StatefulSet"]
    broken = yaml.safe_load(yaml.safe_dump(sts))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert validation_errors(broken)
    examples = kustomize(MANIFESTS / "examples")
    (node,) = [d for d in examples if d["kind"] == "ProxmoxNode"]
    node["spec"]["port"] = "twenty-two"
    assert validation_errors(node)


def test_pod_runs_operator_and_webhook_as_proxnix_commands(base: list[dict[str, Any]]) -> None:
    spec = pod(base)
    containers = {c["name"]: c for c in spec["containers"]}
    assert set(containers) == {"operator", "webhook"}
    for name, container in containers.items():
        assert container["args"][0] == name
        assert container["args"][0] in SUBCOMMANDS
        assert "command" not in container  # the image's entry point, `proxnix`
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] in {"/healthz", "/readyz"}
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["serviceAccountName"] == "proxnix"


def test_pod_options_are_options_of_the_commands(base: list[dict[str, Any]]) -> None:
    """Every `--flag` the pod passes is one the command accepts (a renamed option fails here, not in a cluster)."""
    spec = pod(base)
    for container in spec["containers"]:
        args = [a.replace("$(POD_NAMESPACE)", "proxnix-system") for a in container["args"]]
        out = subprocess.run(
            [sys.executable, "-m", "proxnix.cli", *args, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        for arg in args[1:]:
            if arg.startswith("--"):
                assert arg.split("=", 1)[0] in out.stdout, f"{container['name']}: {arg}"


def test_ingress_exposes_only_the_hook(base: list[dict[str, Any]]) -> None:
    (ingress,) = [d for d in base if d["kind"] == "Ingress"]
    assert ingress["spec"]["ingressClassName"] == "traefik"
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/hook"]
