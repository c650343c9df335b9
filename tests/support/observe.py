"""Looking at the sandbox as a user would: a condition of an object's status, `qm config` and `qm list` on a node
over SSH. Shared by the end-to-end tests (re-exported by tests/e2e/conftest.py) and the benches."""

from __future__ import annotations

from typing import Any

from proxnix_testbed.sandbox import Sandbox


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    """The condition of that type in obj.status, or {}."""
    for cond in ((obj or {}).get("status") or {}).get("conditions", []):
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def node_config(sb: Sandbox, node: str, vmid: int) -> dict[str, str] | None:
    """`qm config <vmid>` on the node as a dict, or None when the VM is not there."""
    result = sb.ssh(node, f"qm config {vmid}")
    if result.rc != 0:
        assert "does not exist" in result.err, result.err
        return None
    return dict(line.split(": ", 1) for line in result.out.splitlines() if ": " in line)


def node_vmids(sb: Sandbox, node: str) -> list[int]:
    """VMIDs in `qm list` on the node."""
    out = sb.ssh(node, "qm list").out
    return [int(line.split()[0]) for line in out.splitlines()[1:] if line.strip()]
