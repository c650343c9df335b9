"""Issue 10's rules at the VM reconcile's steps, against the in-memory node (`tests.support.fake_node`):
- a node its liveness probe finds down: the VM shows Unknown (Ready Unknown, with since when), never its last good
  state, and work hanging on the node is abandoned at once;
- a node down for a cause that cannot pass by itself (a host key): Unknown too, stalled, the cause named;
- a local image outside the operator's image roots is refused before anything reaches the node.
(InternalError, ImageDownloading and the first-create Event: `test_unexpected_errors`.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from proxnix.adapters.local_images import LocalImageError, LocalImages
from proxnix.api.conditions import find_condition
from proxnix.api.proxmoxvm import ProxmoxVMStatus
from proxnix.proxmox.errors import HostKeyMismatch
from proxnix.reconcile.outcome import NODE_UNREACHABLE
from proxnix.reconcile.vm import VmReconciler, VmRef, steps
from tests.reconcile.test_vm_reconcile import IMAGE, OWNER, UID, changes, world
from tests.reconcile.test_vm_reconcile import ref as vm_ref
from tests.support.fake_node import FakeNode, FakeNodes, owned_vm, retried_with

SINCE = "2026-12-01T00:00:10Z"


def ref(source: str | None = None, status: ProxmoxVMStatus | None = None) -> VmRef:
    return vm_ref(status) if source is None else vm_ref(status, image={"source": source})


def cond(status: object, type_: str) -> tuple[str, str, str]:
    """(status, reason, message) of a condition."""
    assert isinstance(status, ProxmoxVMStatus)
    found = find_condition(status.conditions, type_)
    assert found is not None, type_
    return found.status, found.reason, found.message


async def ready_vm() -> tuple[VmReconciler, FakeNode, ProxmoxVMStatus]:
    """A VM Running and Ready on an answering node, and its status."""
    reconciler, node, _ = world(agent_addresses=["10.0.0.5"])
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await reconciler.reconcile(ref())
    status = outcome.status
    assert isinstance(status, ProxmoxVMStatus)
    assert status.phase == "Running"
    assert cond(status, "Ready")[:2] == ("True", "Succeeded")
    return reconciler, node, status


# --- liveness → Unknown -----------------------------------------------------------------------------------------------


async def test_a_vm_on_a_node_found_down_shows_unknown_with_since_when() -> None:
    reconciler, node, ready = await ready_vm()
    node.go_down(SINCE)
    node.cached_age_s = 1.0  # a cached view exists, and must not be served
    outcome = await reconciler.reconcile(ref(status=ready), max_age=60, drift=True)
    status = outcome.status
    assert isinstance(status, ProxmoxVMStatus)
    assert status.phase == "Unknown"
    ready_status, reason, message = cond(status, "Ready")
    assert (ready_status, reason) == ("Unknown", "NodeUnreachable")
    assert f"since {SINCE}" in message
    assert cond(status, "InSync")[:2] == ("Unknown", "NodeUnreachable")
    assert status.last_sync_time == ready.last_sync_time  # the last good view is kept, not refreshed
    assert retried_with(outcome) == NODE_UNREACHABLE
    assert changes(node) == []


async def test_a_call_hanging_on_a_node_that_goes_down_is_abandoned() -> None:
    reconciler, node, ready = await ready_vm()
    reconciler.agent.forget(UID)  # the addresses are read again: that call hangs (the node froze)
    node.hang_on.add("agent")
    work = asyncio.create_task(reconciler.reconcile(ref(status=ready), drift=True))
    await asyncio.wait_for(node.hanging.wait(), 5)
    assert not work.done()
    node.go_down(SINCE)
    outcome = await asyncio.wait_for(work, 5)
    status = outcome.status
    assert isinstance(status, ProxmoxVMStatus)
    assert status.phase == "Unknown"
    assert cond(status, "Ready")[:2] == ("Unknown", "NodeUnreachable")
    assert not reconciler.busy(UID)  # the VM's lock is free again for the next resync


async def test_a_node_down_for_a_host_key_shows_its_vms_unknown_and_names_the_cause() -> None:
    reconciler, node, ready = await ready_vm()
    node.go_down(SINCE, "host key mismatch", HostKeyMismatch)
    outcome = await reconciler.reconcile(ref(status=ready), max_age=60, drift=True)
    status = outcome.status
    assert isinstance(status, ProxmoxVMStatus)
    assert status.phase == "Unknown"  # not Failed: the VM may well be running, it cannot be seen
    assert cond(status, "InSync")[:2] == ("Unknown", "HostKeyMismatch")
    assert cond(status, "Stalled")[:2] == ("True", "HostKeyMismatch")  # a person must fix the key
    assert f"since {SINCE}" in cond(status, "Ready")[2]
    assert status.last_sync_time == ready.last_sync_time
    assert changes(node) == []


# --- image roots --------------------------------------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> tuple[LocalImages, Path, Path]:
    """LocalImages serving only <tmp>/images; a qcow2-looking file inside, and a secret outside (and a link to it)."""
    served = tmp_path / "images"
    served.mkdir()
    inside = served / "ok.raw"
    inside.write_bytes(b"\0" * 4096)
    secret = tmp_path / "secret"
    secret.write_bytes(b"the operator's service-account token")
    (served / "link.raw").symlink_to(secret)
    return LocalImages((served,), cache_dir=tmp_path / "cache"), inside, secret


@pytest.mark.parametrize("which", ["outside", "link", "dotdot"])
async def test_a_local_image_outside_the_roots_is_refused_before_the_node_is_touched(
    roots: tuple[LocalImages, Path, Path], which: str
) -> None:
    images, inside, secret = roots
    source = {
        "outside": str(secret),
        "link": str(inside.parent / "link.raw"),
        "dotdot": f"{inside.parent}/../{secret.name}",
    }[which]
    node = FakeNode()
    reconciler = VmReconciler(FakeNodes({"pve1": node}), images)
    with pytest.raises(LocalImageError) as refused:
        await steps.plan(ref(source), node, images, await steps.observe(node, 0))
    assert (refused.value.reason, refused.value.permanent) == ("ImageSourceForbidden", True)
    outcome = await reconciler.reconcile(ref(source))
    assert changes(node) == []
    assert outcome.stall
    assert cond(outcome.status, "Stalled")[:2] == ("True", "ImageSourceForbidden")
    assert cond(outcome.status, "Ready")[:2] == ("False", "ImageSourceForbidden")
    images.close()


async def test_a_forbidden_image_never_touches_an_existing_vm(roots: tuple[LocalImages, Path, Path]) -> None:
    images, _, secret = roots
    node = FakeNode()
    node.vms[100] = owned_vm(OWNER, IMAGE)
    outcome = await VmReconciler(FakeNodes({"pve1": node}), images).reconcile(ref(str(secret)))
    assert changes(node) == []
    assert cond(outcome.status, "Stalled")[:2] == ("True", "ImageSourceForbidden")
    images.close()


async def test_an_image_under_the_roots_is_created_from(roots: tuple[LocalImages, Path, Path]) -> None:
    images, inside, _ = roots
    node = FakeNode()
    outcome = await VmReconciler(FakeNodes({"pve1": node}), images).reconcile(ref(str(inside)))
    assert [c[0] for c in changes(node)][:2] == ["upload", "create"]
    assert not outcome.stall
    images.close()
