"""The condition summariser: Ready/Reconciling/Stalled derived the same way for every kind, with the generation."""

from __future__ import annotations

import re

import pytest

from proxnix.api.clock import now_rfc3339
from proxnix.api.conditions import find_condition, set_condition
from proxnix.api.proxmoxnode import ProxmoxNodeSpec, ProxmoxNodeStatus
from proxnix.api.summarize import Problem, Readiness, summarize
from proxnix.api.validation import InvalidSpec, validate_spec

NOW = "2026-12-01T00:00:00Z"
READINESS = Readiness(depends_on=("Fetched", "Applied"))


def trio(status: ProxmoxNodeStatus) -> dict[str, tuple[str, str]]:
    found = {c.type: (c.status, c.reason) for c in status.conditions}
    return {t: found[t] for t in ("Ready", "Reconciling", "Stalled")}


def with_conditions(**values: str) -> ProxmoxNodeStatus:
    status = ProxmoxNodeStatus()
    for type_, value in values.items():
        status.conditions = set_condition(
            status.conditions, type_, value, f"{type_}{value}", type_, 1, now=NOW
        )  # type: ignore[arg-type]
    return status


def test_all_declared_conditions_true_is_ready() -> None:
    status = with_conditions(Fetched="True", Applied="True")
    summarize(status, READINESS, generation=5, ready_message="all good", now=NOW)
    assert trio(status) == {
        "Ready": ("True", "Succeeded"),
        "Reconciling": ("False", "Succeeded"),
        "Stalled": ("False", "NotStalled"),
    }
    ready = find_condition(status.conditions, "Ready")
    assert ready is not None
    assert ready.message == "all good"
    assert status.observed_generation == 5
    assert {
        c.observed_generation for c in status.conditions if c.type in ("Ready", "Reconciling", "Stalled")
    } == {5}


@pytest.mark.parametrize(
    ("fetched", "applied", "ready"),
    [("False", "True", ("False", "FetchedFalse")), ("True", "Unknown", ("Unknown", "AppliedUnknown"))],
)
def test_ready_mirrors_the_first_declared_condition_that_is_not_true(
    fetched: str, applied: str, ready: tuple[str, str]
) -> None:
    status = with_conditions(Fetched=fetched, Applied=applied)
    summarize(status, READINESS, generation=1, now=NOW)
    assert trio(status)["Ready"] == ready


def test_a_declared_condition_never_set_is_not_ready() -> None:
    status = with_conditions(Fetched="True")
    summarize(status, READINESS, generation=1, now=NOW)
    assert trio(status)["Ready"] == ("Unknown", "NotObserved")


def test_a_stalling_problem_stalls_and_stops_reconciling() -> None:
    status = with_conditions(Fetched="True", Applied="True")
    summarize(status, READINESS, generation=1, problem=Problem("InvalidSpec", "bad", stalled=True), now=NOW)
    assert trio(status) == {
        "Ready": ("False", "InvalidSpec"),
        "Reconciling": ("False", "InvalidSpec"),
        "Stalled": ("True", "InvalidSpec"),
    }


def test_a_problem_that_may_clear_keeps_reconciling() -> None:
    status = with_conditions(Fetched="True", Applied="True")
    summarize(status, READINESS, generation=1, problem=Problem("Timeout", "slow"), now=NOW)
    assert trio(status) == {
        "Ready": ("False", "Timeout"),
        "Reconciling": ("True", "Timeout"),
        "Stalled": ("False", "NotStalled"),
    }


def test_an_unobservable_state_is_unknown() -> None:
    status = with_conditions(Fetched="True", Applied="True")
    summarize(
        status, READINESS, generation=1, problem=Problem("NodeUnreachable", "down", unknown=True), now=NOW
    )
    assert trio(status)["Ready"] == ("Unknown", "NodeUnreachable")


def test_work_in_progress_is_reconciling() -> None:
    status = with_conditions(Fetched="True", Applied="True")
    summarize(status, READINESS, generation=1, progressing="create VM 100", now=NOW)
    assert trio(status)["Reconciling"] == ("True", "Progressing")
    assert trio(status)["Ready"] == ("False", "Progressing")


def test_one_formatter_for_every_invalid_spec() -> None:
    with pytest.raises(InvalidSpec) as caught:
        validate_spec(ProxmoxNodeSpec, {"host": "pve", "port": 70000, "credentialsSecretRef": {"name": "s"}})
    assert str(caught.value).startswith("port: ")
    assert validate_spec(ProxmoxNodeSpec, {"host": "pve", "credentialsSecretRef": {"name": "s"}}).port == 22


def test_the_clock_writes_rfc3339_utc() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now_rfc3339())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", now_rfc3339(microseconds=True))
