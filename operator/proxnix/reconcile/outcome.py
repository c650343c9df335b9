"""What every reconcile returns, for every kind: one `Outcome` (the next status, the Events, and retry / stall /
done), and the named retry policies. The handler layer applies an Outcome in one place
(`proxnix.handlers.outcomes.apply_outcome`): status patch, Events, then kopf's retry or stall. No kopf here.

How a reconcile package uses it (ProxmoxVM, ProxmoxNode, and the coming GitRepo):
    problem = ...                                # api.summarize.Problem, or None
    summarize(status, READINESS, generation=..., problem=problem)
    return Outcome(status, events, retry=Retry(NODE_TRANSIENT, problem.message))   # or stall=..., or neither

Retry delays are never bare numbers in `reconcile/` or `handlers/`: each is a `RetryPolicy` named here for the
situation it waits out, so the table below is the operator's whole retry schedule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from proxnix.api.meta import StatusModel

EventType = Literal["Normal", "Warning"]
Progress = Callable[[dict[str, Any]], Awaitable[None]]
"""Reports progress (a status merge patch) while a reconcile works, before its Outcome is applied."""


def short(exc: BaseException, limit: int = 400) -> str:
    """An error's text, cut to fit a condition message or an Event."""
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the object."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before the next attempt, and (for polls) how many attempts in a row are worth it."""

    name: str
    delay_s: float
    max_attempts: int | None = None  # None: retry as long as the reason lasts


# The operator's retry schedule.
NODE_NOT_READY = RetryPolicy("NodeNotReady", 5)
"""A VM's ProxmoxNode is not configured yet (its probe is about to run)."""
NODE_UNREACHABLE = RetryPolicy("NodeUnreachable", 20)
"""The node does not answer over SSH."""
NODE_TRANSIENT = RetryPolicy("Transient", 10)
"""A lock, a timeout, a busy node: clears by itself."""
IMAGE_NOT_READY = RetryPolicy("ImageNotReady", 30)
"""The image file is not (yet) readable on the operator's side."""
IMAGE_DOWNLOADING = RetryPolicy("ImageDownloading", 5)
"""The image URL is still downloading (in the background; the reconcile does not wait for it)."""
INTERNAL_ERROR = RetryPolicy("InternalError", 60)
"""An unexpected error (a bug): reported as a condition, tried again after a minute."""
AGENT_WAIT = RetryPolicy("AgentWait", 3, max_attempts=40)
"""A started VM's guest agent does not answer yet (booting): poll, for two minutes at most."""
NODE_PROBE_FAILED = RetryPolicy("NodeProbeFailed", 15)
"""A ProxmoxNode probe failed (Secret missing or unreadable, node unreachable)."""
STATUS_NOT_WRITTEN = RetryPolicy("StatusNotWritten", 5)
"""The API server refused or did not answer a status write: run again so the status catches up."""
DELETE_NODE_MISSING = RetryPolicy("DeleteNodeMissing", 30)
"""A VM to destroy is on a node that is not configured: keep the finalizer until it is."""
DELETE_UNJUDGED = RetryPolicy("DeleteUnjudged", 10)
"""A VM to destroy cannot be judged yet (unreadable config, a create in progress)."""
DELETE_FAILED = RetryPolicy("DeleteFailed", 15)
"""Destroying failed on something that may clear (a lost connection, a lock)."""
VMS_DELETING = RetryPolicy("VmsDeleting", 5)
"""A GitRepo with deletionPolicy Delete waits for its ProxmoxVMs to be gone (their VMs destroyed or kept) before its
finalizer goes: while it is there, each VM's delete handler can still see that the GitRepo asked for deletion."""
SOURCE_UNAVAILABLE = RetryPolicy("SourceUnavailable", 30)
"""A GitRepo's repository cannot be fetched (network, credentials, a missing ref) or its Secret is missing."""
NIX_TRANSIENT = RetryPolicy("NixTransient", 60)
"""nix timed out or is not installed: a GitRepo's evaluation or build may succeed next time."""
APPLY_FAILED = RetryPolicy("ApplyFailed", 10)
"""Writing a GitRepo's ProxmoxVMs failed (API server error, a conflicting create)."""
VMS_PENDING = RetryPolicy("VMsPending", 5)
"""A GitRepo's ProxmoxVMs are not Ready for the applied revision yet: look again (on the GitRepo's timer)."""


@dataclass(frozen=True)
class Retry:
    """Try again after `policy.delay_s`, because of `reason`."""

    policy: RetryPolicy
    reason: str


@dataclass
class Outcome:
    """The result of one reconcile (or delete) step list.

    - `status`: the next status to write (None: leave the status alone);
    - `events`: Events to post, in order;
    - `retry`: run again after a delay (the problem may clear by itself);
    - `stall`: the reason no retry can help (the status says Stalled; wait for a change of the object);
    - `done`: for deletions, whether the object may go (its finalizer removed).
    """

    status: StatusModel | None = None
    events: list[Event] = field(default_factory=list)
    retry: Retry | None = None
    stall: str = ""
    done: bool = True
