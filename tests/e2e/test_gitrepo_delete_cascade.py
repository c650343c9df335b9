"""The other side of the race in test_gitrepo_delete_orphan, made certain: the operator is stopped while
`kubectl delete gitrepo --cascade=foreground` runs, so the garbage collector deletes every ProxmoxVM of the Orphan
GitRepo before the operator can orphan them. Started again, the operator keeps every VM on its node (each ProxmoxVM's
delete handler sees its GitRepo being deleted with deletionPolicy Orphan) and lets the objects and the GitRepo go.

The VMs then belong to objects that are gone: a GitRepo applied again does not take them over (its new ProxmoxVMs
report `VMIDConflict` and change nothing), as for any VM another object made.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import GC_WITHIN, condition, events
from tests.support.fleet import FLEET, Fleet
from tests.support.nodecalls import writes_since

pytestmark = pytest.mark.e2e


def test_the_collector_deleting_the_proxmoxvms_first_keeps_every_vm(fleet: Fleet) -> None:
    sb = fleet.sb
    configs = fleet.configs()
    since = time.time()
    sb.stop_operator()
    sb.kubectl("delete", "gitrepo", "fleet", "--cascade=foreground", "--wait=false")
    sb.wait_for(
        lambda: all(
            (vm := sb.get("proxmoxvm", name)) and vm["metadata"].get("deletionTimestamp") for name in FLEET
        ),
        GC_WITHIN,
        "the collector deleting every ProxmoxVM",
    )
    sb.start_operator()
    sb.wait_for(lambda: sb.get("gitrepo", "fleet") is None, 60, "GitRepo fleet gone")
    sb.wait_for(lambda: all(sb.get("proxmoxvm", name) is None for name in FLEET), 60, "the ProxmoxVMs gone")
    for name, (_, vmid) in FLEET.items():
        retained = [e["message"] for e in events(sb, name) if e["reason"] == "Retained"]
        assert any(f"VM {vmid} kept on the node: its GitRepo 'fleet'" in m for m in retained), (
            name,
            retained,
        )
    assert fleet.configs() == configs
    assert writes_since(sb.sim_dir, since) == {}, "a VM was touched on its node"

    fleet.apply_gitrepo()

    def conflicts() -> bool:
        reasons = {condition(sb.get("proxmoxvm", name), "Ready").get("reason") for name in FLEET}
        return reasons == {"VMIDConflict"}

    sb.wait_for(conflicts, 60, "every new ProxmoxVM reporting the VM of its deleted predecessor")
    assert fleet.configs() == configs
    assert writes_since(sb.sim_dir, since) == {}, "a VM was touched on its node"
