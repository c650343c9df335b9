"""Against the real Kubernetes control plane: the kube adapter, and `proxnix webhook` as a subprocess.

The GitRepo CRD is the generated one from crds/; Secrets and GitRepos are created through the API by the admin; the
adapter and the sidecar (`python -m proxnix.cli webhook`) authenticate as ServiceAccount proxnix-webhook with the
Roles of manifests/base/rbac.yaml, receive signed pushes over HTTP, and the test reads the annotations back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from proxnix.adapters.kube import KubeApi, KubeError, NotFound, load_configuration
from proxnix.api.meta import ANNOTATION_REQUESTED_AT, ANNOTATION_REVISION
from proxnix.sources.webhooks.providers import Provider
from proxnix.sources.webhooks.signatures import signature_headers
from proxnix_testbed.controlplane import ControlPlane, identities
from tests.support.controlplane import admin_api
from tests.support.kubeapi import REPO_ROOT, KubeAPI, wait_for
from tests.webhook.cases import CASES

pytestmark = pytest.mark.e2e

GITREPOS = "/apis/proxnix.io/v1alpha1/namespaces/{ns}/gitrepos"
SECRET = b"e2e-shared-secret"


def _ok(response: Any) -> Any:
    assert response.status in (200, 201), response
    return response.body


def _secret(api: KubeAPI, ns: str, name: str, value: bytes) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "data": {"token": base64.b64encode(value).decode()},
    }
    _ok(api.post(f"/api/v1/namespaces/{ns}/secrets", body))


def _gitrepo(api: KubeAPI, ns: str, name: str, url: str, ref: dict[str, str], secret: str | None) -> None:
    spec: dict[str, Any] = {"url": url, "ref": ref}
    if secret:
        spec["webhook"] = {"secretRef": {"name": secret}}
    body = {
        "apiVersion": "proxnix.io/v1alpha1",
        "kind": "GitRepo",
        "metadata": {"name": name, "namespace": ns, "annotations": {"team": "ops"}},
        "spec": spec,
    }
    _ok(api.post(GITREPOS.format(ns=ns), body))


def _annotations(api: KubeAPI, ns: str, name: str) -> dict[str, str]:
    annotations: dict[str, str] = _ok(api.get(GITREPOS.format(ns=ns) + f"/{name}"))["metadata"].get(
        "annotations", {}
    )
    return annotations


NAMESPACES = ("default", "team-b")


@pytest.fixture
def cluster(control_plane: ControlPlane, tmp_path: Path) -> Iterator[KubeAPI]:
    """The control plane (CRDs installed) with namespaces default and team-b, the webhook's Roles granted in both;
    requests go as the admin, `.kubeconfig` is ServiceAccount proxnix-webhook's. Emptied of GitRepos and Secrets
    afterwards."""
    identities.grant(control_plane, NAMESPACES)
    kubeconfig = identities.service_account_kubeconfig(
        control_plane, identities.WEBHOOK, tmp_path / "webhook.kubeconfig"
    )
    yield admin_api(control_plane, kubeconfig, tmp_path)
    for ns in NAMESPACES:
        control_plane.kubectl("delete", "gitrepos.proxnix.io,secrets", "--all", "-n", ns, check=False)


async def test_kube_adapter_against_the_api_server(cluster: KubeAPI) -> None:
    _secret(cluster, "default", "hook", b"value\n")
    _gitrepo(cluster, "default", "infra", "git@github.com:o/r.git", {"branch": "main"}, "hook")
    _gitrepo(cluster, "team-b", "infra", "git@github.com:o/r.git", {"tag": "v1"}, None)
    api = KubeApi(load_configuration(str(cluster.kubeconfig)))
    try:
        assert sorted(o["metadata"]["namespace"] for o in await api.list_gitrepos(None)) == [
            "default",
            "team-b",
        ]
        assert [o["metadata"]["name"] for o in await api.list_gitrepos("team-b")] == ["infra"]
        assert await api.read_secret_key("default", "hook", "token") == b"value\n"
        assert await api.read_secret_key("default", "hook", "other") is None
        assert await api.read_secret_key("default", "missing", "token") is None
        await api.patch_gitrepo_annotations("default", "infra", {ANNOTATION_REVISION: "a" * 40})
        assert _annotations(cluster, "default", "infra") == {"team": "ops", ANNOTATION_REVISION: "a" * 40}
        with pytest.raises(NotFound):
            await api.patch_gitrepo_annotations("default", "missing", {ANNOTATION_REVISION: "a" * 40})
    finally:
        api.close()


def test_load_configuration_errors(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeError):
        load_configuration(str(tmp_path / "missing"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "also-missing"))
    with pytest.raises(KubeError):
        load_configuration()


@dataclass
class Sidecar:
    proc: subprocess.Popen[str]
    url: str
    log: list[str]


def _read_until(proc: subprocess.Popen[str], log: list[str], want: str, timeout: float) -> dict[str, Any]:
    """Read the sidecar's JSON log lines until one has msg `want` (fail after `timeout` seconds)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            break
        line = proc.stderr.readline()
        if not line:
            break
        log.append(line)
        try:
            entry: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == want:
            return entry
    pytest.fail(f"no {want!r} log line from the sidecar in {timeout}s:\n{''.join(log)}")


@contextlib.contextmanager
def _run_sidecar(cluster: KubeAPI, *extra: str) -> Iterator[Sidecar]:
    """`proxnix webhook` as a subprocess against the server, listening and ready; killed on exit if still running."""
    env = cluster.env | {
        "PYTHONPATH": str(REPO_ROOT / "operator") + os.pathsep + os.environ.get("PYTHONPATH", "")
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    argv = [
        sys.executable,
        "-m",
        "proxnix.cli",
        "webhook",
        "--listen",
        "127.0.0.1:0",
        "--miss-seconds",
        "0",
        *extra,
    ]
    proc = subprocess.Popen(
        argv,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    log: list[str] = []
    try:
        listening = _read_until(proc, log, "listening", timeout=20)
        sidecar = Sidecar(proc, f"http://{listening['address']}", log)
        wait_for(lambda: _http(sidecar, "GET", "/readyz")[0] == 200, timeout=10, what="/readyz 200")
        yield sidecar
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture
def sidecar(cluster: KubeAPI) -> Iterator[Sidecar]:
    """`proxnix webhook` against the server, listening and ready."""
    with _run_sidecar(cluster) as running:
        yield running


def _http(
    sidecar: Sidecar, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(sidecar.url + path, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test server
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def _push(sidecar: Sidecar, body: bytes, secret: bytes, signed_body: bytes | None = None) -> tuple[int, Any]:
    headers = CASES[0].headers("push") | signature_headers(Provider.GITHUB, signed_body or body, secret)
    return _http(sidecar, "POST", "/hook", body, headers)


def _ssh_only_github_push() -> bytes:
    payload = json.loads(CASES[0].body("push"))
    for field in ("clone_url", "git_url", "html_url", "url", "svn_url"):
        del payload["repository"][field]
    return json.dumps(payload).encode()


def test_webhook_subprocess_marks_gitrepos_through_the_api(cluster: KubeAPI, sidecar: Sidecar) -> None:
    revision = CASES[0].push_revision
    _secret(cluster, "default", "hook", SECRET)
    _secret(cluster, "team-b", "hook", b"team-b-secret")
    _gitrepo(
        cluster, "default", "infra", "ssh://git@github.com/Octo-Org/infra.git", {"branch": "main"}, "hook"
    )
    _gitrepo(cluster, "default", "infra-dev", "https://github.com/Octo-Org/infra", {"branch": "dev"}, "hook")
    _gitrepo(cluster, "team-b", "infra", "git@github.com:Octo-Org/infra.git", {"branch": "main"}, "hook")
    body = _ssh_only_github_push()

    # created after the sidecar synced: found by the miss re-list (--miss-seconds 0)
    tampered = body.replace(b"web01 4 GiB", b"web01 5 GiB", 1)
    status, answer = _push(sidecar, tampered, SECRET, signed_body=body)
    assert status == 401, answer
    assert ANNOTATION_REVISION not in _annotations(cluster, "default", "infra")

    status, answer = _push(sidecar, body, SECRET)
    assert status == 202, answer
    assert answer["matched"] == [
        {"namespace": "default", "name": "infra", "ref": "refs/heads/main", "revision": revision}
    ]
    marked = _annotations(cluster, "default", "infra")
    assert marked[ANNOTATION_REVISION] == revision
    assert marked["team"] == "ops"  # a merge patch: other annotations stay
    assert marked[ANNOTATION_REQUESTED_AT].endswith("Z")
    assert ANNOTATION_REVISION not in _annotations(cluster, "default", "infra-dev")  # another branch
    assert ANNOTATION_REVISION not in _annotations(cluster, "team-b", "infra")  # another secret

    status, answer = _push(sidecar, body, b"team-b-secret")
    assert status == 202, answer
    assert [(m["namespace"], m["name"]) for m in answer["matched"]] == [("team-b", "infra")]
    assert _annotations(cluster, "team-b", "infra")[ANNOTATION_REVISION] == revision

    # a GitLab push for a GitRepo in https form, sent on the per-GitRepo path
    gitlab = next(c for c in CASES if c.provider is Provider.GITLAB)
    _gitrepo(cluster, "team-b", "platform", gitlab.url, {"branch": "main"}, "hook")
    headers = gitlab.headers("push") | signature_headers(Provider.GITLAB, b"", b"team-b-secret")
    status, answer = _http(sidecar, "POST", "/hook/team-b/platform", gitlab.body("push"), headers)
    assert status == 202, answer
    assert _annotations(cluster, "team-b", "platform")[ANNOTATION_REVISION] == gitlab.push_revision

    status, metrics = _http(sidecar, "GET", "/metrics")
    assert 'proxnix_webhook_requests_total{outcome="unauthorized",provider="github"} 1.0' in metrics
    assert "proxnix_webhook_gitrepos_marked_total 3.0" in metrics
    log = "".join(sidecar.log)
    assert SECRET.decode() not in log

    sidecar.proc.send_signal(signal.SIGTERM)
    assert sidecar.proc.wait(timeout=15) == 0
    _read_until(sidecar.proc, sidecar.log, "stopped", timeout=5)


def test_insecure_mode_warns_and_accepts_unsigned_pushes_for_secretless_gitrepos(cluster: KubeAPI) -> None:
    _gitrepo(cluster, "default", "open", "https://github.com/Octo-Org/infra.git", {"branch": "main"}, None)
    _gitrepo(
        cluster, "default", "closed", "https://github.com/Octo-Org/infra.git", {"branch": "main"}, "missing"
    )
    with _run_sidecar(cluster, "--insecure-allow-unsigned") as running:
        warnings = [json.loads(line) for line in running.log if '"warning"' in line]
        assert any("INSECURE" in entry["msg"] for entry in warnings), running.log
        status, answer = _http(running, "POST", "/hook", CASES[0].body("push"), CASES[0].headers("push"))
        assert status == 202, answer
        assert [m["name"] for m in answer["matched"]] == ["open"]
    assert _annotations(cluster, "default", "open")[ANNOTATION_REVISION] == CASES[0].push_revision
    assert ANNOTATION_REVISION not in _annotations(cluster, "default", "closed")
