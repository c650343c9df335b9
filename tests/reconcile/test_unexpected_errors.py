"""An unexpected exception in a reconcile step becomes a condition (InternalError) and a retry, not a traceback loop
with no status; the object is never left without a phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from proxnix.adapters.local_images import LocalImages
from proxnix.api.proxmoxnode import ProxmoxNodeSpec
from proxnix.api.proxmoxvm import ProxmoxVMSpec, ProxmoxVMStatus
from proxnix.proxmox.inventory import NodeInventory
from proxnix.reconcile.nodes import NodeHandle
from proxnix.reconcile.vm import VmReconciler
from proxnix.reconcile.vm_types import VmRef


class BrokenClient:
    """A client whose inventory fails with a bug (not a driver error)."""

    async def inventory(self) -> NodeInventory:
        raise ValueError("embedded null byte")


class OneNode:
    """Stands in for the NodeDirectory: one handle for every name."""

    def __init__(self, handle: NodeHandle) -> None:
        self.handle = handle

    def get(self, namespace: str, name: str) -> NodeHandle:
        return self.handle


def vm_ref() -> VmRef:
    spec = ProxmoxVMSpec.model_validate({"node": "pve1", "vmid": 100, "image": {"source": "/nix/store/x"}})
    return VmRef("ns", "web", "uid-1", 3, spec, ProxmoxVMStatus())


async def test_an_unexpected_error_becomes_an_internal_error_condition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node_spec = ProxmoxNodeSpec.model_validate({"host": "127.0.0.1", "credentialsSecretRef": {"name": "s"}})
    handle = NodeHandle(
        key="ns/pve1",
        spec=node_spec,
        node_name="pve1",
        pool=cast(Any, None),
        client=cast(Any, BrokenClient()),
    )
    reconciler = VmReconciler(cast(Any, OneNode(handle)), LocalImages([Path("/nix/store")]))
    outcome = await reconciler.reconcile(vm_ref())
    ready = next(c for c in outcome.status.conditions if c.type == "Ready")
    assert ready.status == "False"
    assert ready.reason == "InternalError"
    assert "ValueError: embedded null byte" in ready.message
    assert outcome.status.observed_generation == 3
    assert outcome.status.phase.value == "Pending"
    assert outcome.retry_after == 60
    assert not outcome.stalled
    assert [e.reason for e in outcome.events] == ["InternalError"]
    assert any(r.exc_info for r in caplog.records), "the traceback is logged once, for the operator's admin"
