"""ProxmoxNode credentials: the Secret is re-read when it changes; a host key that does not match is refused."""

from __future__ import annotations

import json
from pathlib import Path

from proxnix_testbed.sandbox import Sandbox
from tests.e2e.conftest import condition

WRONG_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZYYDxF/QDVvk/DUah/ff0AN+WXyc7gBN7AOjTRbGmh"


def _secret(sb: Sandbox, node: str, known_hosts: str) -> str:
    assert sb.cluster is not None
    info = sb.cluster.node(node)
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{node}-ssh", "namespace": "default"},
            "type": "Opaque",
            "stringData": {"ssh-privatekey": Path(info.identityFile).read_text(), "known_hosts": known_hosts},
        }
    )


def test_rotated_secret_is_picked_up_and_a_wrong_host_key_refused(sandbox: Sandbox) -> None:
    sb = sandbox
    assert sb.cluster is not None
    info = sb.cluster.node("pve2")
    good = Path(info.knownHostsFile).read_text()
    hosts = f"[{info.host}]:{info.port}"
    sb.apply(_secret(sb, "pve2", f"{hosts} {WRONG_KEY}\n"))
    try:
        node = sb.wait_for(
            lambda: (
                (o := sb.get("proxmoxnode", "pve2")) and condition(o, "Ready").get("status") == "False" and o
            ),
            60,
            "pve2 not Ready after the Secret changed",
        )
        assert condition(node, "NodeReachable")["reason"] == "HostKeyMismatch"
        assert "host key" in condition(node, "Ready")["message"].lower()
    finally:
        sb.apply(_secret(sb, "pve2", good))
    sb.wait_for(
        lambda: (o := sb.get("proxmoxnode", "pve2")) and condition(o, "Ready").get("status") == "True",
        60,
        "pve2 Ready again with the right known_hosts",
    )
