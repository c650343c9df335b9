"""kubectl 1.32 end to end against the standalone server (`python -m proxnix_testbed.kubeapi`, a subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.kubeapi.conftest import widget, widget_crd
from tests.support.kubeapi import REPO_CRDS, start_process, stop_process

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
stringData:
  token: s3cret
"""


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def _rows(text: str) -> list[dict[str, str]]:
    """kubectl's column output as dicts, cut at the header's column positions (cells may be empty)."""
    header, *lines = text.rstrip().splitlines()
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    names = [header[a:b].strip() for a, b in bounds]
    return [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)} for line in lines]


def test_kubectl_lifecycle(kubeapi_process, kubectl, tmp_path):
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(yaml.safe_dump(widget_crd()))
    assert "created" in kubectl("apply", "-f", str(crd_file)).stdout
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.proxnix.io", "--timeout=10s")
    assert "shop" in kubectl("apply", "-f", "-", input=MANIFESTS).stdout
    assert "unchanged" in kubectl("apply", "-f", "-", input=MANIFESTS).stdout
    secret = json.loads(kubectl("get", "secret", "creds", "-n", "shop", "-o", "json").stdout)
    assert secret["data"] == {"token": "czNjcmV0"}
    kubectl("create", "secret", "generic", "made", "--from-literal=a=b", "-n", "shop")
    table = _lines(kubectl("get", "secrets", "-n", "shop").stdout)
    assert table[0] == ["NAME", "TYPE", "DATA", "AGE"]
    assert [row[:3] for row in table[1:]] == [["creds", "Opaque", "1"], ["made", "Opaque", "1"]]

    w1 = widget("w1", size=3, color="blue")
    w1["metadata"]["labels"] = {"tier": "web"}
    w1["metadata"]["finalizers"] = ["example.proxnix.io/hold"]
    objects = yaml.safe_dump_all([w1, widget("w2")])
    assert kubectl("apply", "-f", "-", input=objects).stdout.count("created") == 2

    # Printer columns: priority-1 columns only with -o wide; short names and categories resolve.
    plain = _rows(kubectl("get", "widgets").stdout)
    assert list(plain[0]) == ["NAME", "SIZE", "READY", "AGE"]
    assert (plain[0]["NAME"], plain[0]["SIZE"], plain[0]["READY"]) == ("w1", "3", "")
    wide = _rows(kubectl("get", "wdg", "-o", "wide").stdout)
    assert list(wide[0]) == ["NAME", "SIZE", "READY", "COLOR", "AGE"]
    assert [(row["NAME"], row["COLOR"]) for row in wide] == [("w1", "blue"), ("w2", "red")]
    assert [row[0] for row in _lines(kubectl("get", "gadgets").stdout)[1:]] == ["w1", "w2"]
    assert _lines(kubectl("get", "widgets", "-l", "tier=web", "-o", "name").stdout) == [
        ["widget.example.proxnix.io/w1"]
    ]
    as_yaml = yaml.safe_load(kubectl("get", "widget", "w2", "-o", "yaml").stdout)
    assert as_yaml["spec"] == {"size": 1, "color": "red"}

    # diff is a server-side dry run: it shows the change and stores nothing.
    diff = kubectl("diff", "-f", "-", input=yaml.safe_dump(widget("w2", size=7)), check=False)
    assert diff.returncode == 1, diff.stderr
    assert "+  size: 7" in diff.stdout
    after = yaml.safe_load(kubectl("get", "widget", "w2", "-o", "yaml").stdout)
    assert after["metadata"]["resourceVersion"] == as_yaml["metadata"]["resourceVersion"]
    assert kubectl("auth", "can-i", "delete", "widgets").stdout.strip() == "yes"

    # Status through the subresource, then wait on the Ready condition (which updates the READY column).
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    waiter = subprocess.Popen(
        ["kubectl", "wait", "--for=condition=Ready", "widget/w1", "--timeout=20s"],
        env=kubeapi_process.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kubectl("patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", json.dumps(ready))
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert "condition met" in out
    assert _rows(kubectl("get", "widget", "w1").stdout)[0]["READY"] == "True"

    # Validation errors come back naming the field; unknown fields are rejected (kubectl asks for Strict).
    bad = kubectl("apply", "-f", "-", input=yaml.safe_dump(widget("bad", size="big")), check=False)
    assert bad.returncode != 0
    assert "spec.size" in bad.stderr
    unknown = kubectl("apply", "-f", "-", input=yaml.safe_dump(widget("bad", extra=1)), check=False)
    assert 'unknown field "spec.extra"' in unknown.stderr

    # describe shows the object and its Events.
    event = {
        "metadata": {"generateName": "w1-"},
        "type": "Normal",
        "reason": "Tested",
        "message": "hello from the test",
        "involvedObject": {
            "apiVersion": "example.proxnix.io/v1",
            "kind": "Widget",
            "name": "w1",
            "namespace": "default",
            "uid": as_uid(kubectl, "w1"),
        },
    }
    assert kubeapi_process.post("/api/v1/namespaces/default/events", event).status == 201
    described = kubectl("describe", "widget", "w1").stdout
    assert "Name:         w1" in described
    assert "hello from the test" in described

    # explain reads the CRD schema through OpenAPI v3.
    assert "How big." in kubectl("explain", "widgets.spec.size").stdout

    # delete with a finalizer: the object gets a deletionTimestamp and goes once finalizers are [].
    kubectl("delete", "widget", "w1", "--wait=false")
    marked = json.loads(kubectl("get", "widget", "w1", "-o", "json").stdout)
    assert marked["metadata"]["deletionTimestamp"]
    gone = subprocess.Popen(
        ["kubectl", "wait", "--for=delete", "widget/w1", "--timeout=20s"],
        env=kubeapi_process.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kubectl("patch", "widget", "w1", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    _, err = gone.communicate(timeout=30)
    assert gone.returncode == 0, err
    assert kubectl("get", "widget", "w1", check=False).returncode == 1
    kubectl("delete", "-f", "-", input=objects.split("---")[1])
    assert "No resources found" in kubectl("get", "widgets").stderr


def as_uid(kubectl, name: str) -> str:
    return kubectl("get", "widget", name, "-o", "jsonpath={.metadata.uid}").stdout


def test_standalone_server_loads_the_project_crds(tmp_path):
    if not list(REPO_CRDS.glob("*.yaml")):
        pytest.skip("no CRDs generated in crds/ yet")
    proc, ready = start_process(tmp_path, "--crds", str(REPO_CRDS))
    try:
        env = {
            "KUBECONFIG": ready["kubeconfig"],
            "KUBECACHEDIR": str(tmp_path / "cache"),
            "PATH": "/usr/bin:/bin",
        }
        result = subprocess.run(
            ["kubectl", "api-resources", "--categories=proxnix", "-o", "name"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert "proxmoxvms.proxnix.io" in result.stdout.split()
        result = subprocess.run(
            ["kubectl", "get", "proxnix"], env=env, capture_output=True, text=True, check=True, timeout=30
        )
        assert "No resources found" in result.stderr
    finally:
        stop_process(proc)
    assert proc.returncode == 0
