"""An operator in a subprocess finds the server through KUBECONFIG alone (kopf's default login via the kubernetes
client), as `proxnix operator` will in end-to-end tests; it stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.kubeapi.conftest import WIDGETS, widget, widget_crd
from tests.support.kubeapi import wait_for

OPERATOR = """
import kopf

@kopf.on.create("example.proxnix.io", "v1", "widgets")
def created(patch, **_):
    patch.status["phase"] = "SeenBySubprocess"
"""

pytestmark = pytest.mark.e2e


def test_kopf_subprocess_uses_kubeconfig(kubeapi, tmp_path):
    kubeapi.install_crds(widget_crd())
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    log = (tmp_path / "operator.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kopf", "run", str(script), "--namespace=default", "--standalone"],
        env=kubeapi.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert kubeapi.post(WIDGETS, widget("w1")).status == 201

        def phase() -> str | None:
            return kubeapi.get(f"{WIDGETS}/w1").body.get("status", {}).get("phase")

        assert (
            wait_for(phase, timeout=20, what="the subprocess operator's status patch") == "SeenBySubprocess"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()
    output = (tmp_path / "operator.log").read_text()
    assert "login_via_client' succeeded" in output
    assert "Traceback" not in output
