"""Installing proxnix on a fresh cluster, as an admin would, on a control plane of its own (kopf's peering CRDs
are not there until the test applies them): the operator with no peering CRD runs standalone and says so; with
`--peering proxnix` and no peering object it says what to apply and is not ready until it exists;
`kubectl apply -k manifests/` and the examples overlay are accepted by the real API server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxnix_testbed.controlplane import ControlPlane, identities
from proxnix_testbed.controlplane.cluster import free_port, running_control_plane
from proxnix_testbed.sandbox import PEERING_MANIFEST, REPO_CRDS, wait_for

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NAMESPACE = "default"
ORPHAN_VM = {
    "apiVersion": "proxnix.io/v1alpha1",
    "kind": "ProxmoxVM",
    "metadata": {"name": "waits-for-its-node", "namespace": NAMESPACE},
    "spec": {"node": "nowhere", "vmid": 900, "image": {"source": "/nix/store/none.qcow2"}},
}


@pytest.fixture
def bare_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane with the proxnix CRDs only, and the operator's RBAC granted in `default`."""
    with running_control_plane(tmp_path / "cp") as plane:
        plane.install(REPO_CRDS)
        identities.grant(plane, [NAMESPACE])
        yield plane


class Operator:
    """`proxnix operator` as its ServiceAccount against `plane`, with its log and health endpoint."""

    def __init__(self, plane: ControlPlane, folder: Path, *args: str) -> None:
        self.kubeconfig = identities.service_account_kubeconfig(
            plane, identities.OPERATOR, folder / "operator.kubeconfig", default_namespace=NAMESPACE
        )
        self.log = folder / "operator.log"
        self.health = free_port()
        cmd = [
            sys.executable, "-m", "proxnix.cli", "operator", "--namespace", NAMESPACE,
            "--health-listen", f"127.0.0.1:{self.health}", *args,
        ]  # fmt: skip
        env = {"KUBECONFIG": str(self.kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(folder)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        assert self.proc.poll() is None, self.log.read_text(errors="replace")
        return self.log.read_text(errors="replace")

    def health_status(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/healthz", timeout=2) as rsp:
                return int(rsp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def vm_status(plane: ControlPlane) -> dict[str, object]:
    rsp = plane.request(
        "GET", f"/apis/proxnix.io/v1alpha1/namespaces/{NAMESPACE}/proxmoxvms/waits-for-its-node"
    )
    assert rsp.status == 200, rsp.body
    status: dict[str, object] = rsp.body.get("status") or {}
    return status


def test_without_the_peering_crd_the_operator_runs_standalone_and_says_so(
    bare_plane: ControlPlane, tmp_path: Path
) -> None:
    operator = Operator(bare_plane, tmp_path)
    try:
        wait_for(lambda: "running standalone" in operator.text(), 5, "the standalone warning within 5 s")
        line = next(line for line in operator.text().splitlines() if "running standalone" in line)
        assert "WARNING" in line
        assert "manifests/base/peering.yaml" in line
        # It acts: a ProxmoxVM gets a status (its node is not configured).
        bare_plane.kubectl("apply", "-f", "-", input=json.dumps(ORPHAN_VM))
        wait_for(lambda: vm_status(bare_plane).get("conditions"), 30, "the VM's status")
    finally:
        operator.stop()


def test_a_required_peering_without_its_object_says_what_to_apply_and_is_not_ready(
    bare_plane: ControlPlane, tmp_path: Path
) -> None:
    operator = Operator(bare_plane, tmp_path, "--peering", "proxnix")
    try:
        wait_for(lambda: "is required (--peering proxnix)" in operator.text(), 5, "the error within 5 s")
        line = next(line for line in operator.text().splitlines() if "is required" in line)
        assert "ERROR" in line
        assert "manifests/base/peering.yaml" in line
        wait_for(lambda: operator.health_status() == 500, 15, "/healthz failing")
        # Once the peering exists, the operator becomes ready and acts.
        bare_plane.install(PEERING_MANIFEST)
        peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "proxnix"}}
        bare_plane.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(peering))
        wait_for(lambda: operator.health_status() == 200, 40, "/healthz ready once the peering exists")
        bare_plane.kubectl("apply", "-f", "-", input=json.dumps(ORPHAN_VM))
        wait_for(lambda: vm_status(bare_plane).get("conditions"), 60, "the VM's status")
    finally:
        operator.stop()


def test_kubectl_apply_k_installs_the_base_and_accepts_the_examples(bare_plane: ControlPlane) -> None:
    """As the README says: the CRDs first (a CRD and objects of its kind cannot go in one apply), then the base."""
    crds = bare_plane.kubectl(
        "apply", "--server-side", "-k", str(MANIFESTS / "crds"), check=False, timeout=120
    )
    assert crds.returncode == 0, crds.stderr
    bare_plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    done = bare_plane.kubectl("apply", "--server-side", "-k", str(MANIFESTS), check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    kinds = {line.split("/")[0] for line in done.stdout.splitlines() if "/" in line}
    assert {"statefulset.apps", "ingress.networking.k8s.io", "kopfpeering.kopf.dev"} <= kinds
    sts = json.loads(
        bare_plane.kubectl("get", "statefulset", "proxnix", "-n", "proxnix-system", "-o", "json").stdout
    )
    assert [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]] == ["operator", "webhook"]
    examples = bare_plane.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-k",
        str(MANIFESTS / "examples"),
        check=False,
        timeout=120,
    )
    assert examples.returncode == 0, examples.stderr
    assert "gitrepo.proxnix.io/homelab serverside-applied (server dry run)" in examples.stdout
