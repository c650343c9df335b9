"""`kubectl delete gitrepo --cascade=foreground` of a GitRepo with the default deletionPolicy (Orphan), on the real
control plane with its garbage collector.

What proxnix promises: no VM on a node is touched (none destroyed, stopped or changed), and the GitRepo goes. What
happens to each ProxmoxVM object is a race the user started by asking for a foreground cascade: the operator's
delete handler removes the GitRepo's ownerReference from each ProxmoxVM (which then stays, an orphan labelled with
the GitRepo, adoptable by the next GitRepo of that name), while the garbage collector deletes every dependent it
reaches first. A ProxmoxVM the collector deleted goes with its VM kept on the node (a `Retained` Event naming the
GitRepo's policy): its delete handler sees the GitRepo being deleted with deletionPolicy Orphan (or already gone).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import GC_WITHIN, events
from tests.support.fleet import FLEET, Fleet
from tests.support.nodecalls import writes_since

pytestmark = pytest.mark.e2e


def test_a_foreground_delete_of_an_orphan_gitrepo_keeps_every_vm_running(fleet: Fleet) -> None:
    sb = fleet.sb
    configs = fleet.configs()
    since = time.time()
    sb.kubectl("delete", "gitrepo", "fleet", "--cascade=foreground", "--wait=false")
    sb.wait_for(lambda: sb.get("gitrepo", "fleet") is None, GC_WITHIN, "GitRepo fleet gone")

    def settled() -> dict[str, dict[str, Any] | None]:
        vms = {name: sb.get("proxmoxvm", name) for name in FLEET}
        deleting = [v for v in vms.values() if v is not None and v["metadata"].get("deletionTimestamp")]
        return {} if deleting else vms

    vms = sb.wait_for(settled, 60, "no ProxmoxVM being deleted")
    outcome = {}
    for name, vm in vms.items():
        if vm is None:
            retained = [e["message"] for e in events(sb, name) if e["reason"] == "Retained"]
            assert any("GitRepo 'fleet'" in m for m in retained), (name, retained)
            outcome[name] = "deleted by the collector, VM kept"
        else:
            assert not vm["metadata"].get("ownerReferences"), vm["metadata"]
            assert vm["metadata"]["labels"]["proxnix.io/gitrepo"] == "fleet"  # adoptable by the next GitRepo
            outcome[name] = "orphaned"
    print(f"\nforeground delete of an Orphan GitRepo: {outcome}")
    assert fleet.configs() == configs
    assert writes_since(sb.sim_dir, since) == {}, "a VM was touched on its node"
