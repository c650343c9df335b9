"""Pytest fixtures for tests against the real Kubernetes control plane (`proxnix_testbed.controlplane`).

- `control_plane` (session) — etcd + kube-apiserver + kube-controller-manager on loopback, with the proxnix CRDs and
  the kopf peering CRDs installed; stopped at the end of the session (and checked to leave no port bound);
- `namespace` — a fresh namespace per test, with proxnix's Roles granted in it (manifests/base/rbac.yaml);
- `admin_api(plane, kubeconfig, workdir)` — a `KubeAPI` (tests.support.kubeapi) that sends its requests as the admin
  while handing `kubeconfig` (e.g. a ServiceAccount's) to the code under test.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxnix_testbed.controlplane import identities
from proxnix_testbed.controlplane.cluster import ControlPlane, port_bound
from proxnix_testbed.sandbox import PEERING_MANIFEST, REPO_CRDS
from tests.support.kubeapi import KubeAPI


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One control plane for the test session."""
    plane = ControlPlane.start(tmp_path_factory.mktemp("controlplane"))
    ports = plane.ports
    try:
        plane.install(REPO_CRDS, PEERING_MANIFEST)
        yield plane
    finally:
        plane.stop()
    assert not [p for p in ports if port_bound(p)], "the control plane left a port bound"


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for this test (deleted afterwards, without waiting)."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{secrets.token_hex(3)}"
    identities.grant(control_plane, [name])
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def admin_api(plane: ControlPlane, kubeconfig: Path, workdir: Path) -> KubeAPI:
    """Requests as the admin; `kubeconfig` (and `.env`) for the code under test."""
    return KubeAPI(plane.url, kubeconfig, workdir, None, ssl_context=plane.admin_ssl_context())
