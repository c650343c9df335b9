"""The condition summariser every kind uses (after Flux's `summarize`): Ready, Reconciling and Stalled are never set
by hand; a reconcile sets its kind's own conditions, says what problem it met or what is in progress, and
`summarize` derives the three from that.

Rules, in order:
- a `Problem` that no retry can help (`stalled`): Stalled=True, Reconciling=False, Ready=False, all with its reason;
- any other `Problem`: Reconciling=True, Ready=False (Unknown when the state cannot be observed, `unknown`);
- work in progress (`progressing`): Reconciling=True and Ready=False, reason Progressing;
- otherwise Ready mirrors the first of the kind's declared conditions (`Readiness.depends_on`) that is not True, and
  is True (reason `Readiness.success_reason`) when all are. Reconciling is then False.
Every condition it writes, and the status's `observedGeneration`, carry the generation reconciled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from proxnix.api.clock import now_rfc3339
from proxnix.api.conditions import Condition, ConditionStatus, ConditionType, find_condition, set_condition

WAITING = "waiting for a change of the spec or the node"


@dataclass(frozen=True)
class Problem:
    """Why the object is not as wanted: a CamelCase reason, a message a user can act on, whether no retry can help
    (`stalled`), and whether the object's state is unknown rather than known to be wrong (`unknown`)."""

    reason: str
    message: str
    stalled: bool = False
    unknown: bool = False


@dataclass(frozen=True)
class Readiness:
    """A kind's declaration of what its Ready is made of: its own conditions, in the order Ready reports them."""

    depends_on: tuple[str, ...]
    success_reason: str = "Succeeded"


class Summarized(Protocol):
    """A status the summariser can write: its conditions and observedGeneration."""

    conditions: list[Condition]
    observed_generation: int


def summarize(
    status: Summarized,
    readiness: Readiness,
    *,
    generation: int,
    problem: Problem | None = None,
    progressing: str = "",
    ready_message: str = "",
    now: str | None = None,
) -> None:
    """Set Stalled, Reconciling and Ready on `status` (in place) and stamp `generation` on it."""
    stamp = now or now_rfc3339()
    conds = list(status.conditions)

    def put(type_: str, value: ConditionStatus, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, value, reason, message, generation, now=stamp)

    if problem is not None and problem.stalled:
        put(ConditionType.STALLED, "True", problem.reason, problem.message)
        put(ConditionType.RECONCILING, "False", problem.reason, WAITING)
        put(ConditionType.READY, "False", problem.reason, problem.message)
    else:
        put(ConditionType.STALLED, "False", "NotStalled", "")
        if problem is not None:
            put(ConditionType.RECONCILING, "True", problem.reason, problem.message)
            put(
                ConditionType.READY,
                "Unknown" if problem.unknown else "False",
                problem.reason,
                problem.message,
            )
        elif progressing:
            put(ConditionType.RECONCILING, "True", "Progressing", progressing)
            put(ConditionType.READY, "False", "Progressing", progressing)
        else:
            failing = _first_not_true(conds, readiness.depends_on)
            put(ConditionType.RECONCILING, "False", "Succeeded", "")
            if failing is None:
                put(ConditionType.READY, "True", readiness.success_reason, ready_message)
            else:
                put(ConditionType.READY, failing.status, failing.reason, failing.message)
    status.conditions = conds
    status.observed_generation = generation


def mark_progressing(
    status: Summarized, *, generation: int, message: str, reason: str = "Progressing", now: str | None = None
) -> None:
    """Announce work in progress mid-reconcile: Reconciling=True (reason Progressing, or the step in progress) only.
    Ready and Stalled keep what the last completed reconcile said until `summarize` runs on its result (no
    flapping Ready)."""
    status.conditions = set_condition(
        list(status.conditions),
        ConditionType.RECONCILING,
        "True",
        reason,
        message,
        generation,
        now=now or now_rfc3339(),
    )


def _first_not_true(conditions: list[Condition], types: tuple[str, ...]) -> Condition | None:
    for type_ in types:
        found = find_condition(conditions, type_)
        if found is None:
            return Condition(
                type=type_, status="Unknown", reason="NotObserved", message=f"{type_} not known yet"
            )
        if found.status != "True":
            return found
    return None
