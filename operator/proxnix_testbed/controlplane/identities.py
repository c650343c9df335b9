"""Who talks to the control plane: the ServiceAccounts and Roles of manifests/base/rbac.yaml (the ones proxnix
ships), granted in the namespaces a test or the sandbox uses, and a kubeconfig per ServiceAccount with a token
from the TokenRequest API — so the operator and the webhook run with exactly the permissions a cluster gives them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from proxnix_testbed.controlplane.binaries import REPO_ROOT
from proxnix_testbed.controlplane.cluster import ControlPlane, ControlPlaneError
from proxnix_testbed.controlplane.kubeconfig import write_token_kubeconfig

RBAC_MANIFEST = REPO_ROOT / "manifests" / "base" / "rbac.yaml"
SYSTEM_NAMESPACE = "proxnix-system"
OPERATOR = "proxnix-operator"
WEBHOOK = "proxnix-webhook"
_NAMESPACED_GRANTS = ("Role", "RoleBinding")
TOKEN_SECONDS = 24 * 3600


def rbac_documents() -> list[dict[str, Any]]:
    """The documents of manifests/base/rbac.yaml."""
    return [doc for doc in yaml.safe_load_all(RBAC_MANIFEST.read_text()) if doc]


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def grant_documents(namespaces: Iterable[str]) -> list[dict[str, Any]]:
    """What to apply so that the ServiceAccounts (in proxnix-system) may work in `namespaces`: the namespaces, the
    cluster-wide documents once, and a copy of every Role and RoleBinding in each namespace."""
    wanted = list(dict.fromkeys(namespaces))
    docs = [_namespace(SYSTEM_NAMESPACE), *(_namespace(ns) for ns in wanted)]
    for doc in rbac_documents():
        if doc["kind"] not in _NAMESPACED_GRANTS:
            docs.append(doc)
            continue
        for ns in wanted:
            copy = yaml.safe_load(yaml.safe_dump(doc))
            copy["metadata"]["namespace"] = ns
            docs.append(copy)
    return docs


def grant(plane: ControlPlane, namespaces: Iterable[str]) -> None:
    """Create the ServiceAccounts and give them their Roles in `namespaces` (idempotent)."""
    manifest = yaml.safe_dump_all(grant_documents(namespaces), sort_keys=False)
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=manifest)


def service_account_token(plane: ControlPlane, name: str, namespace: str = SYSTEM_NAMESPACE) -> str:
    """A bound token for ServiceAccount `namespace/name` (TokenRequest API)."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": TOKEN_SECONDS},
    }
    rsp = plane.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
    if rsp.status != 201:
        raise ControlPlaneError(f"TokenRequest for {namespace}/{name}: HTTP {rsp.status} {rsp.body}")
    token: str = rsp.body["status"]["token"]
    return token


def service_account_kubeconfig(
    plane: ControlPlane, name: str, path: Path, *, default_namespace: str = "default"
) -> Path:
    """A kubeconfig at `path` that authenticates as ServiceAccount `proxnix-system/name`."""
    token = service_account_token(plane, name)
    user = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{name}"
    return write_token_kubeconfig(path, plane.url, plane.pki.ca_cert, token, user, default_namespace)
