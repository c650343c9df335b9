"""`apply_outcome`, the one place an Outcome becomes Kubernetes effects: the status (replacing the old one), the
Events, and kopf's retry or stall — against a recording fake of the kube adapter (no server)."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from proxnix.adapters.kube import KubeError, NotFound
from proxnix.api.kinds import ObjectRef
from proxnix.api.proxmoxnode import INFO, ProxmoxNodeStatus
from proxnix.handlers.outcomes import apply_outcome
from proxnix.reconcile.outcome import AGENT_WAIT, DELETE_FAILED, NODE_TRANSIENT, Event, Outcome, Retry

OBJ = ObjectRef(INFO, "default", "pve1", "u-1")


class RecordingKube:
    def __init__(self, fail: KubeError | None = None) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []
        self.fail = fail

    async def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.statuses.append(status)

    async def post_event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


async def test_the_status_replaces_the_old_one_and_events_are_posted_in_order() -> None:
    kube = RecordingKube()
    outcome = Outcome(
        ProxmoxNodeStatus(reachable=True, vm_count=2),
        [Event("Normal", "A", "first"), Event("Warning", "B", "second")],
    )
    await apply_outcome(kube, OBJ, {"pveVersion": "8.3", "kopf": {"x": 1}}, outcome, attempt=0)  # type: ignore[arg-type]
    (patch,) = kube.statuses
    assert patch["reachable"] is True
    assert patch["vmCount"] == 2
    assert patch["pveVersion"] == ""  # written anew (a default), not left from the old status
    assert "kopf" not in patch
    assert [r for _, r, _ in kube.events] == ["A", "B"]


async def test_a_stall_stops_kopf_retrying() -> None:
    with pytest.raises(kopf.PermanentError, match="no retry helps"):
        await apply_outcome(RecordingKube(), OBJ, {}, Outcome(stall="no retry helps"), attempt=0)  # type: ignore[arg-type]


async def test_a_retry_waits_its_policy() -> None:
    outcome = Outcome(retry=Retry(NODE_TRANSIENT, "locked"))
    with pytest.raises(kopf.TemporaryError) as caught:
        await apply_outcome(RecordingKube(), OBJ, {}, outcome, attempt=3)  # type: ignore[arg-type]
    assert caught.value.delay == NODE_TRANSIENT.delay_s


async def test_a_poll_ends_after_its_attempts() -> None:
    outcome = Outcome(retry=Retry(AGENT_WAIT, "booting"))
    assert AGENT_WAIT.max_attempts is not None
    with pytest.raises(kopf.TemporaryError):
        await apply_outcome(RecordingKube(), OBJ, {}, outcome, attempt=AGENT_WAIT.max_attempts - 1)  # type: ignore[arg-type]
    await apply_outcome(RecordingKube(), OBJ, {}, outcome, attempt=AGENT_WAIT.max_attempts)  # type: ignore[arg-type]


async def test_an_unfinished_deletion_is_retried() -> None:
    with pytest.raises(kopf.TemporaryError) as caught:
        await apply_outcome(RecordingKube(), OBJ, {}, Outcome(done=False), attempt=0)  # type: ignore[arg-type]
    assert caught.value.delay == DELETE_FAILED.delay_s


async def test_a_timer_never_raises_its_next_tick_is_the_retry() -> None:
    kube = RecordingKube()
    outcome = Outcome(ProxmoxNodeStatus(), stall="stalled", retry=Retry(NODE_TRANSIENT, "x"))
    await apply_outcome(kube, OBJ, {}, outcome, attempt=None)  # type: ignore[arg-type]
    assert len(kube.statuses) == 1


async def test_a_status_write_refused_is_retried_and_a_gone_object_is_not() -> None:
    outcome = Outcome(ProxmoxNodeStatus())
    with pytest.raises(kopf.TemporaryError):
        await apply_outcome(RecordingKube(KubeError("HTTP 500", 500)), OBJ, {}, outcome, attempt=0)  # type: ignore[arg-type]
    await apply_outcome(RecordingKube(NotFound("HTTP 404", 404)), OBJ, {}, outcome, attempt=0)  # type: ignore[arg-type]


async def test_events_are_posted_even_when_the_status_write_fails() -> None:
    """What was done on the node is told once: a failed status write retries, but the Events still go out."""
    kube = RecordingKube(fail=KubeError("timed out", 0))
    outcome = Outcome(ProxmoxNodeStatus(), [Event("Normal", "Created", "create VM 100")])
    with pytest.raises(kopf.TemporaryError, match="status not written"):
        await apply_outcome(kube, OBJ, {}, outcome, attempt=0)  # type: ignore[arg-type]
    assert kube.events == [("Normal", "Created", "create VM 100")]


async def test_an_unfinished_deletion_keeps_retrying_past_its_policy() -> None:
    """Returning from a delete handler removes the finalizer: an unfinished deletion never returns."""
    assert AGENT_WAIT.max_attempts is not None
    outcome = Outcome(done=False, retry=Retry(AGENT_WAIT, "waiting"))
    with pytest.raises(kopf.TemporaryError) as caught:
        await apply_outcome(RecordingKube(), OBJ, {}, outcome, attempt=AGENT_WAIT.max_attempts + 5)  # type: ignore[arg-type]
    assert caught.value.delay == AGENT_WAIT.delay_s
