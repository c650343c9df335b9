"""Condition helpers: transitions keep their time unless the status changes; one condition per type."""

from __future__ import annotations

from proxnix.api.conditions import find_condition, is_true, remove_condition, set_condition


def test_set_adds_then_replaces() -> None:
    first = set_condition([], "Ready", "False", "Provisioning", "creating", 1, now="2026-01-01T00:00:00Z")
    assert len(first) == 1
    second = set_condition(first, "Ready", "False", "Starting", "starting", 2, now="2026-01-01T00:01:00Z")
    assert len(second) == 1
    ready = find_condition(second, "Ready")
    assert ready is not None
    assert ready.last_transition_time == "2026-01-01T00:00:00Z"  # same status: time kept
    assert (ready.reason, ready.observed_generation) == ("Starting", 2)


def test_transition_time_moves_on_status_change() -> None:
    conds = set_condition([], "Ready", "False", "A", "", 1, now="2026-01-01T00:00:00Z")
    conds = set_condition(conds, "Ready", "True", "B", "", 1, now="2026-01-01T00:05:00Z")
    ready = find_condition(conds, "Ready")
    assert ready is not None
    assert ready.last_transition_time == "2026-01-01T00:05:00Z"
    assert is_true(conds, "Ready")


def test_order_is_stable_and_remove_works() -> None:
    conds = set_condition([], "InSync", "True", "InSync", "", 1)
    conds = set_condition(conds, "Ready", "True", "Running", "", 1)
    conds = set_condition(conds, "Custom", "True", "X", "", 1)
    assert [c.type for c in conds] == ["Ready", "InSync", "Custom"]
    assert [c.type for c in remove_condition(conds, "InSync")] == ["Ready", "Custom"]
    assert not is_true(conds, "Stalled")
