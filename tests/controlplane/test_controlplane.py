"""The test control plane itself: its PKI, the RBAC documents it grants, who the ServiceAccount kubeconfigs are,
that the server is the pinned release serving OpenAPI, and that stopping it frees every port."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from proxnix_testbed.controlplane import ControlPlane, identities
from proxnix_testbed.controlplane.binaries import REPO_ROOT
from proxnix_testbed.controlplane.cluster import port_bound
from proxnix_testbed.controlplane.pki import make_pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_pki_serves_loopback_only_and_names_the_admin_a_master(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    ca = _cert(pki.ca_cert)
    server = _cert(pki.server_cert)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert all(ip.is_loopback or ip.is_private for ip in names.get_values_for_type(x509.IPAddress))
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for cert in (server, _cert(pki.admin.cert)):
        assert cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)  # raises if the signature does not match
    admin = _cert(pki.admin.cert).subject
    assert admin.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert oct(pki.admin.key.stat().st_mode & 0o777) == "0o600"
    assert oct(pki.sa_private.stat().st_mode & 0o777) == "0o600"


def test_grants_copy_roles_into_each_namespace_and_cluster_documents_once() -> None:
    docs = identities.grant_documents(["team-a", "team-b", "team-a"])
    kinds = [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs]
    assert kinds.count(("ClusterRole", "proxnix-operator-cluster", None)) == 1
    assert kinds.count(("ServiceAccount", identities.OPERATOR, identities.SYSTEM_NAMESPACE)) == 1
    for ns in ("team-a", "team-b"):
        assert ("Namespace", ns, None) in kinds
        assert ("Role", identities.OPERATOR, ns) in kinds
        binding = next(
            d
            for d in docs
            if d["kind"] == "RoleBinding" and d["metadata"] == {"name": identities.OPERATOR, "namespace": ns}
        )
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": identities.OPERATOR, "namespace": identities.SYSTEM_NAMESPACE}
        ]
    assert not [k for k in kinds if k[2] == identities.SYSTEM_NAMESPACE and k[0] in ("Role", "RoleBinding")]


def test_the_server_is_the_pinned_release_and_serves_openapi(control_plane: ControlPlane) -> None:
    pinned = re.search(r"k8s\.io/kubernetes (v[0-9.]+)", (REPO_ROOT / "hack" / "kube" / "go.mod").read_text())
    assert pinned is not None
    version = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == pinned.group(1)
    openapi = control_plane.request("GET", "/openapi/v2")
    assert openapi.status == 200  # a server built with Go 1.27 answers 503 here
    assert "io.k8s.api.core.v1.Secret" in openapi.body["definitions"]


def test_service_account_kubeconfig_is_that_account_with_its_roles(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = identities.service_account_kubeconfig(control_plane, identities.OPERATOR, tmp_path / "kc")
    whoami = json.loads(control_plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:proxnix-system:proxnix-operator"

    def can(verb: str, resource: str) -> bool:
        result = control_plane.kubectl(
            "auth", "can-i", verb, resource, "-n", namespace, kubeconfig=kubeconfig, check=False
        )
        return result.stdout.strip() == "yes"

    assert can("get", "secrets")
    assert can("patch", "proxmoxvms.proxnix.io")
    assert can("create", "events")
    assert not can("create", "secrets")
    assert not can("delete", "proxmoxnodes.proxnix.io")
    assert not can("get", "configmaps")


def test_stop_ends_every_process_and_frees_every_port(tmp_path: Path) -> None:
    plane = ControlPlane.start(tmp_path / "plane")
    ports = plane.ports
    assert len(ports) == 3  # etcd client and peer, the API server
    assert all(port_bound(p) for p in ports)
    plane.stop()
    assert not plane.running()
    assert [p for p in ports if port_bound(p)] == []
