"""The ProxmoxNode probe's steps (credentials → probe → report) against in-memory fakes: what it reports, when it
retries and when it stalls; the summariser's Ready/Reconciling/Stalled for the node."""

from __future__ import annotations

from proxnix.api.conditions import find_condition
from proxnix.api.proxmoxnode import ProxmoxNodeSpec, ProxmoxNodeStatus
from proxnix.proxmox.errors import HostKeyMismatch
from proxnix.proxmox.ownership import Owner
from proxnix.reconcile.node_probe import NodeRef, invalid_spec, probe_node
from proxnix.reconcile.outcome import NODE_PROBE_FAILED
from tests.support.fake_node import FakeNode, FakeNodes, FakeSecrets, owned_vm, retried_with

SECRET = {"ssh-privatekey": b"key", "known_hosts": b"hosts"}


def ref(status: ProxmoxNodeStatus | None = None) -> NodeRef:
    spec = ProxmoxNodeSpec.model_validate({"host": "127.0.0.1", "credentialsSecretRef": {"name": "pve1-ssh"}})
    return NodeRef("default", "pve1", 3, spec, status or ProxmoxNodeStatus())


def cond(status: object, type_: str) -> tuple[str, str]:
    assert isinstance(status, ProxmoxNodeStatus)
    found = find_condition(status.conditions, type_)
    assert found is not None, type_
    return found.status, found.reason


async def test_a_reachable_node_is_ready_with_its_version_and_vm_count() -> None:
    node = FakeNode()
    node.vms[100] = owned_vm(Owner("default", "a", "u"), "a" * 64)
    outcome = await probe_node(FakeNodes({"pve1": node}), FakeSecrets({"pve1-ssh": SECRET}), ref())
    status = outcome.status
    assert isinstance(status, ProxmoxNodeStatus)
    assert (status.reachable, status.vm_count, status.pve_version) == (True, 1, "8.3.0")
    assert node.client.dialect.import_from
    assert cond(status, "NodeReachable") == ("True", "Reachable")
    assert cond(status, "Ready") == ("True", "Reachable")
    assert cond(status, "Reconciling") == ("False", "Succeeded")
    assert cond(status, "Stalled") == ("False", "NotStalled")
    assert status.observed_generation == 3
    assert all(c.observed_generation == 3 for c in status.conditions)
    assert (outcome.retry, outcome.stall) == (None, "")


async def test_the_version_is_read_once_and_its_dialect_spoken() -> None:
    node = FakeNode(version="7.1-2")
    nodes, secrets = FakeNodes({"pve1": node}), FakeSecrets({"pve1-ssh": SECRET})
    first = await probe_node(nodes, secrets, ref())
    assert not node.client.dialect.import_from
    assert node.client.dialect.legacy_disk_commands
    node.connected_before = True
    assert isinstance(first.status, ProxmoxNodeStatus)
    await probe_node(nodes, secrets, ref(first.status))
    assert node.calls.count(("version", 0)) == 1


async def test_a_missing_secret_is_retried_and_the_pool_left_alone() -> None:
    nodes = FakeNodes({"pve1": FakeNode()})
    outcome = await probe_node(nodes, FakeSecrets(), ref())
    assert nodes.configured == []
    assert cond(outcome.status, "Ready") == ("False", "SecretNotFound")
    assert cond(outcome.status, "Reconciling") == ("True", "SecretNotFound")
    assert retried_with(outcome) == NODE_PROBE_FAILED


async def test_an_unreachable_node_is_not_ready_and_retried() -> None:
    nodes = FakeNodes({"pve1": FakeNode(reachable=False)})
    outcome = await probe_node(nodes, FakeSecrets({"pve1-ssh": SECRET}), ref())
    assert isinstance(outcome.status, ProxmoxNodeStatus)
    assert outcome.status.reachable is False
    assert cond(outcome.status, "NodeReachable") == ("False", "NodeUnreachable")
    assert cond(outcome.status, "Ready") == ("False", "NodeUnreachable")
    assert retried_with(outcome) == NODE_PROBE_FAILED


async def test_a_wrong_host_key_stalls() -> None:
    node = FakeNode()
    node.fail_on["observe"] = HostKeyMismatch(
        "host key for 127.0.0.1 does not match known_hosts", node="pve1"
    )
    outcome = await probe_node(FakeNodes({"pve1": node}), FakeSecrets({"pve1-ssh": SECRET}), ref())
    assert cond(outcome.status, "Stalled") == ("True", "HostKeyMismatch")
    assert cond(outcome.status, "Ready") == ("False", "HostKeyMismatch")
    assert "host key" in outcome.stall
    assert outcome.retry is None


def test_an_invalid_spec_stalls() -> None:
    outcome = invalid_spec(ProxmoxNodeStatus(), 4, "invalid spec: port: too large")
    assert cond(outcome.status, "Stalled") == ("True", "InvalidSpec")
    assert cond(outcome.status, "Ready") == ("False", "InvalidSpec")
    assert outcome.stall == "invalid spec: port: too large"
