"""Issue 10 in the reconcile steps (in-memory fakes): an unexpected exception becomes a condition (InternalError)
and a retry, not a traceback loop with no status; a first creation is not "drift" even when a resync makes it; a
download in progress is retried soon and named."""

from __future__ import annotations

from typing import Any, cast

import pytest

from proxnix.adapters.local_images import LocalImageError
from proxnix.reconcile.outcome import IMAGE_DOWNLOADING, INTERNAL_ERROR
from tests.reconcile.test_vm_reconcile import SOURCE, cond, ref, world
from tests.support.fake_node import retried_with


async def test_an_unexpected_error_becomes_an_internal_error_condition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reconciler, node, _ = world()
    node.fail_on["observe"] = cast(Any, ValueError("embedded null byte"))  # a bug, not a driver error
    outcome = await reconciler.reconcile(ref())
    assert outcome.status is not None
    assert cond(outcome.status, "Ready") == ("False", "InternalError")
    ready = next(c for c in outcome.status.conditions if c.type == "Ready")
    assert "ValueError: embedded null byte" in ready.message
    assert outcome.status.observed_generation == 2
    assert retried_with(outcome) == INTERNAL_ERROR
    assert not outcome.stall
    assert [e.reason for e in outcome.events] == ["InternalError"]
    assert any(r.exc_info for r in caplog.records), "the traceback is in the operator's log"


async def test_a_first_creation_by_a_resync_is_not_drift() -> None:
    reconciler, _, _ = world()
    outcome = await reconciler.reconcile(ref(), drift=True)
    created = [e for e in outcome.events if e.reason == "Created"]
    assert created
    assert not any("drift" in e.message for e in created)
    started = [e for e in outcome.events if e.reason == "Started"]
    assert started
    assert all(e.message.startswith("drift: ") for e in started)  # what a resync corrected still says so


async def test_a_download_in_progress_is_named_and_retried_soon() -> None:
    reconciler, _, images = world()
    images.broken[SOURCE] = LocalImageError(
        "http://x/y is still downloading (17 bytes so far)", permanent=False, reason="ImageDownloading"
    )
    outcome = await reconciler.reconcile(ref())
    assert cond(outcome.status, "Ready") == ("False", "ImageDownloading")
    assert retried_with(outcome) == IMAGE_DOWNLOADING
