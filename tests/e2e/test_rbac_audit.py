"""Least privilege, proven from the API server's audit log: the operator and the webhook, each as its
ServiceAccount with the Roles of manifests/base/rbac.yaml, go through a VM's whole life and a signed push; every
request they made is read back from the audit log. None was refused, and the Roles grant nothing beyond what they
used plus the rights documented below as needed by paths this scenario does not take."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxnix_testbed.controlplane import ControlPlane, identities
from proxnix_testbed.controlplane.cluster import running_control_plane
from proxnix_testbed.sandbox import SandboxConfig, running_sandbox
from tests.e2e.conftest import node_config, vm_manifest, wait_phase
from tests.support.controlplane import admin_api
from tests.webhook.test_kube_e2e import CASES, SECRET, _gitrepo, _push, _run_sidecar, _secret

Right = tuple[str, str, str, str]  # verb, API group, resource, subresource
SA_PREFIX = f"system:serviceaccount:{identities.SYSTEM_NAMESPACE}:"

# Granted, and needed, on paths this scenario does not take.
DOCUMENTED: dict[str, dict[Right, str]] = {
    identities.OPERATOR: {
        (
            "create",
            "proxnix.io",
            "proxmoxvms",
            "",
        ): "the GitRepo controller writes one ProxmoxVM per VM of a flake",
        ("delete", "proxnix.io", "proxmoxvms", ""): "the GitRepo controller prunes VMs that left the flake",
        ("get", "proxnix.io", "gitrepos", ""): "the GitRepo controller",
        ("list", "proxnix.io", "gitrepos", ""): "kopf's watch of GitRepos (the GitRepo controller)",
        ("watch", "proxnix.io", "gitrepos", ""): "kopf's watch of GitRepos (the GitRepo controller)",
        ("patch", "proxnix.io", "gitrepos", ""): "kopf's finalizer on GitRepos; orphaning on delete",
        ("patch", "proxnix.io", "gitrepos", "status"): "the GitRepo controller's status",
        ("update", "proxnix.io", "gitrepos", "finalizers"): (
            "ProxmoxVMs' ownerReferences to their GitRepo set blockOwnerDeletion, which needs it where the "
            "OwnerReferencesPermissionEnforcement admission plugin is on (not in the test API server)"
        ),
        (
            "get",
            "proxnix.io",
            "proxmoxvms",
            "",
        ): "the GitRepo controller reads a ProxmoxVM it is about to patch",
        (
            "get",
            "proxnix.io",
            "proxmoxnodes",
            "",
        ): "one rule for the three kinds (the VM reconcile reads the watch)",
        (
            "get",
            "kopf.dev",
            "clusterkopfpeerings",
            "",
        ): "cluster-wide peering (an operator without --namespace)",
        (
            "list",
            "kopf.dev",
            "clusterkopfpeerings",
            "",
        ): "cluster-wide peering (an operator without --namespace)",
        (
            "watch",
            "kopf.dev",
            "clusterkopfpeerings",
            "",
        ): "cluster-wide peering (an operator without --namespace)",
        (
            "patch",
            "kopf.dev",
            "clusterkopfpeerings",
            "",
        ): "cluster-wide peering (an operator without --namespace)",
    },
}


def granted() -> dict[str, set[Right]]:
    """Every right manifests/base/rbac.yaml grants each ServiceAccount (through any binding)."""
    docs = identities.rbac_documents()
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("Role", "ClusterRole")}
    rights: dict[str, set[Right]] = {}
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for subject in binding["subjects"]:
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        name, _, sub = resource.partition("/")
                        for verb in rule["verbs"]:
                            rights.setdefault(subject["name"], set()).add((verb, group, name, sub))
    return rights


def requests(audit_log: Path) -> list[dict[str, Any]]:
    """The completed requests of our ServiceAccounts in the audit log."""
    found = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        user = event.get("user", {}).get("username", "")
        if event.get("stage") == "ResponseComplete" and user.startswith(SA_PREFIX) and event.get("objectRef"):
            found.append(event)
    return found


def right_of(event: dict[str, Any]) -> Right:
    ref = event["objectRef"]
    return (event["verb"], ref.get("apiGroup", ""), ref["resource"], ref.get("subresource", ""))


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with running_control_plane(tmp_path_factory.mktemp("audited") / "cp", audit=True) as plane:
        yield plane


def test_the_roles_grant_what_is_used_and_nothing_more(audited: ControlPlane, tmp_path: Path) -> None:
    config = SandboxConfig(
        dir=tmp_path / "sandbox", nodes=1, resync_interval=3.0, control_plane=audited, standalone=False
    )
    with running_sandbox(config, operator=False) as sb:
        peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "proxnix"}}
        sb.apply(json.dumps(peering))
        sb.start_operator("--peering", "proxnix")
        image = sb.make_image("audited", "1G")
        sb.apply(vm_manifest("audited", 150, image, memoryMiB=512))
        wait_phase(sb, "audited", "Running", 90)
        sb.kubectl("patch", "proxmoxvm", "audited", "--type", "merge", "-p", '{"spec":{"memoryMiB":768}}')
        sb.wait_for(lambda: (c := node_config(sb, "pve1", 150)) and c["memory"] == "768", 60, "memory 768")
        sb.kubectl("delete", "proxmoxvm", "audited", "--wait=false")
        sb.wait_for(lambda: sb.get("proxmoxvm", "audited") is None, 60, "the ProxmoxVM gone")

        webhook_kubeconfig = identities.service_account_kubeconfig(
            audited, identities.WEBHOOK, tmp_path / "webhook.kubeconfig"
        )
        api = admin_api(audited, webhook_kubeconfig, tmp_path)
        _secret(api, "default", "hook", SECRET)
        _gitrepo(
            api, "default", "infra", "ssh://git@github.com/Octo-Org/infra.git", {"branch": "main"}, "hook"
        )
        with _run_sidecar(api) as sidecar:
            status, answer = _push(sidecar, CASES[0].body("push"), SECRET)
            assert status == 202, answer
        sb.stop_operator()

    assert audited.audit_log is not None
    events = requests(audited.audit_log)
    refused = [
        (e["user"]["username"], right_of(e)) for e in events if e.get("responseStatus", {}).get("code") == 403
    ]
    assert refused == []
    used: dict[str, set[Right]] = {}
    for event in events:
        used.setdefault(event["user"]["username"].removeprefix(SA_PREFIX), set()).add(right_of(event))
    assert used.get(identities.OPERATOR), sorted(used)
    assert used.get(identities.WEBHOOK), sorted(used)
    for account, rights in granted().items():
        documented = set(DOCUMENTED.get(account, {}))
        unused = rights - used.get(account, set()) - documented
        assert unused == set(), f"{account}: granted but neither used nor documented: {sorted(unused)}"
        stale = documented - rights
        assert stale == set(), f"{account}: documented but not granted: {sorted(stale)}"
    for account, rights in sorted(used.items()):
        print(f"used by {account}:", *sorted(rights), sep="\n  ")
