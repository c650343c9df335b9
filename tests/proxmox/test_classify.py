from __future__ import annotations

import pytest

from proxnix.proxmox import errors as e
from proxnix.proxmox.classify import classify_failure, summarize
from tests.proxmox.conftest import FIXTURES

EXPECTED: dict[str, type[e.ProxmoxError]] = {
    "lock-timeout": e.LockTimeout,
    "lock-timeout-same-line": e.LockTimeout,
    "locked-backup": e.VmLocked,
    "locked-snapshot-delete": e.VmLocked,
    "shutdown-timeout": e.OperationTimeout,
    "no-quorum": e.NoQuorum,
    "checksum": e.ConfigChanged,
    "agent-not-running": e.AgentNotRunning,
    "param-name": e.InvalidParameter,
    "param-vmid": e.InvalidParameter,
    "param-tags": e.InvalidParameter,
    "exists-other-node": e.VmidConflict,
    "nextid-taken": e.VmidConflict,
    "protection": e.ProtectionEnabled,
    "shrink": e.DiskShrinkRefused,
    "disk-missing": e.DiskNotFound,
    "config-missing": e.VmNotFound,
    "stop-missing": e.VmNotFound,
    "running-destroy": e.WrongPowerState,
    "already-running": e.WrongPowerState,
    "not-running": e.WrongPowerState,
    "agent-not-configured": e.AgentNotConfigured,
    "import-missing-file": e.ImageError,
    "storage-no-images": e.StorageError,
    "ha-no-purge": e.CommandFailed,
    "something-new": e.CommandFailed,
}

TRANSIENT = {
    "lock-timeout",
    "lock-timeout-same-line",
    "locked-backup",
    "locked-snapshot-delete",
    "shutdown-timeout",
}
TRANSIENT |= {"no-quorum", "checksum", "agent-not-running"}


def test_every_error_fixture_is_covered() -> None:
    assert {p.stem for p in (FIXTURES / "errors").glob("*.stderr")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_classification(name: str) -> None:
    stderr = (FIXTURES / "errors" / f"{name}.stderr").read_text()
    exc = classify_failure("qm something 100", 255, "", stderr, node="pve1")
    assert type(exc) is EXPECTED[name]
    assert exc.transient == (name in TRANSIENT)
    assert isinstance(exc, e.TransientError if name in TRANSIENT else e.PermanentError)
    assert exc.command == "qm something 100"
    assert exc.node == "pve1"
    assert exc.exit_status == 255
    assert "trying to acquire lock" not in exc.message
    assert exc.message


def test_details() -> None:
    locked = classify_failure("qm start 100", 255, "", "VM is locked (backup)\n")
    assert isinstance(locked, e.VmLocked)
    assert locked.lock == "backup"
    conflict = classify_failure(
        "qm create 100", 255, "", "unable to create VM 100 - VM 100 already exists on node 'pve2'\n"
    )
    assert isinstance(conflict, e.VmidConflict)
    assert conflict.other_node == "pve2"
    assert conflict.vmid == 100
    missing = classify_failure(
        "qm config 999", 2, "", "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist\n"
    )
    assert isinstance(missing, e.VmNotFound)
    assert missing.vmid == 999
    param = classify_failure(
        "qm create 100",
        255,
        "",
        "400 Parameter verification failed.\nname: invalid format - value does not look like a valid DNS name\n"
        "memory: value must have a minimum value of 16\n\nqm create <vmid> [OPTIONS]\n",
    )
    assert isinstance(param, e.InvalidParameter)
    assert param.params == {
        "name": "invalid format - value does not look like a valid DNS name",
        "memory": "value must have a minimum value of 16",
    }
    assert "qm create <vmid>" not in param.message


def test_task_error_on_stdout_only_and_empty() -> None:
    exc = classify_failure("qm start 100", 255, "VM is locked (migrate)\n", "")
    assert isinstance(exc, e.VmLocked)
    nothing = classify_failure("qm start 100", 255, "", "")
    assert isinstance(nothing, e.CommandFailed)
    assert summarize("", "") == "command failed without an error message"


def test_message_is_bounded() -> None:
    assert len(summarize("x" * 5000)) <= 500


def test_a_vmid_conflict_has_the_reason_the_plan_uses() -> None:
    """One spelling per problem: found by the plan or refused by the node, a taken VMID reads VMIDConflict."""
    from proxnix.proxmox.plan import BlockReason

    assert e.VmidConflict("taken").reason == BlockReason.VMID_CONFLICT == "VMIDConflict"
    assert e.VmLocked("locked").reason == "VmLocked"
