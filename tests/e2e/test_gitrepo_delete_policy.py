"""Deleting a GitRepo with `deletionPolicy: Delete` on the real control plane: its ProxmoxVMs are deleted, each VM
follows its own deletionPolicy on its node (web01 destroyed; web02, protected, and db01, Retain, kept), and the
GitRepo goes only after its ProxmoxVMs are gone. Nothing is left stuck behind a finalizer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from proxnix_testbed.sandbox import Sandbox
from tests.e2e.conftest import events, node_config
from tests.support.fleet import FLEET, Fleet, applied_fleet
from tests.support.nodecalls import writes_since

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fleet(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The fleet applied (deletionPolicy Delete) and Ready at its first commit."""
    with applied_fleet(sandbox, tmp_path_factory.mktemp("git") / "work", deletionPolicy="Delete") as fleet:
        yield fleet


def test_deleting_a_delete_policy_gitrepo_deletes_its_proxmoxvms_first(fleet: Fleet) -> None:
    sb = fleet.sb
    kept = {"web02": node_config(sb, "pve1", 101), "db01": node_config(sb, "pve2", 110)}
    since = time.time()
    sb.kubectl("delete", "gitrepo", "fleet", "--wait=false")

    sb.wait_for(lambda: sb.get("gitrepo", "fleet") is None, 90, "GitRepo fleet gone")
    # Its finalizer went only once the ProxmoxVMs were gone: none can be left now.
    left = {name: sb.get("proxmoxvm", name) for name in FLEET}
    assert left == dict.fromkeys(FLEET), (
        f"ProxmoxVMs outlived their GitRepo: {sorted(k for k, v in left.items() if v)}"
    )
    assert node_config(sb, "pve1", 100) is None  # web01: deletionPolicy Delete (the default), destroyed
    assert {"web02": node_config(sb, "pve1", 101), "db01": node_config(sb, "pve2", 110)} == kept
    destroyed = writes_since(sb.sim_dir, since)
    assert {vm: dict(w) for vm, w in destroyed.items()} == {("pve1", 100): {("destroy",): 1}}

    reasons = {name: {e["reason"] for e in events(sb, name)} for name in FLEET}
    assert "Destroyed" in reasons["web01"]
    assert "Retained" in reasons["web02"]
    assert "Retained" in reasons["db01"]
    assert any(e["reason"] == "Deleted" for e in events(sb, "fleet"))
