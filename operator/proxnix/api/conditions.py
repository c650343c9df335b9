"""Flux/kstatus-style conditions: the model, the well-known types and reasons, and pure helpers to set them."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from pydantic import Field

from proxnix.api.clock import now_rfc3339
from proxnix.api.meta import StatusModel


class ConditionType(StrEnum):
    """Condition types used across the kinds (CamelCase, as kstatus expects)."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    # GitRepo
    SOURCE_FETCHED = "SourceFetched"
    FETCH_FAILED = "FetchFailed"
    BUILD_FAILED = "BuildFailed"
    APPLIED = "Applied"
    # ProxmoxVM
    PROVISIONED = "Provisioned"
    IN_SYNC = "InSync"
    RESTART_REQUIRED = "RestartRequired"
    AGENT_CONNECTED = "AgentConnected"
    # ProxmoxNode
    NODE_REACHABLE = "NodeReachable"


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """One observation of an aspect of the object's state (metav1.Condition)."""

    type: str = Field(description="Type of the condition in CamelCase, e.g. Ready, Provisioned, InSync.")
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: str = Field(
        default="",
        description="Programmatic, CamelCase identifier of the reason for the last transition.",
    )
    message: str = Field(default="", description="Human-readable details about the last transition.")
    last_transition_time: str = Field(
        default="",
        description="RFC 3339 time of the last change of this condition's status.",
    )
    observed_generation: int = Field(
        default=0,
        description="The .metadata.generation this condition was set for.",
    )


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of the given type, if present."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int,
    now: str | None = None,
) -> list[Condition]:
    """Return a new list with the condition set; lastTransitionTime changes only when the status changes."""
    stamp = now or now_rfc3339()
    previous = find_condition(conditions, type_)
    transition = previous.last_transition_time if previous and previous.status == status else stamp
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=observed_generation,
    )
    result = [c for c in conditions if c.type != type_]
    result.append(new)
    return sorted(result, key=_condition_order)


def remove_condition(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    """Return a new list without the condition of the given type."""
    return [c for c in conditions if c.type != type_]


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    """Whether the condition exists with status True."""
    found = find_condition(conditions, type_)
    return found is not None and found.status == "True"


_ORDER = {t.value: i for i, t in enumerate(ConditionType)}


def _condition_order(condition: Condition) -> tuple[int, str]:
    return (_ORDER.get(condition.type, len(_ORDER)), condition.type)
