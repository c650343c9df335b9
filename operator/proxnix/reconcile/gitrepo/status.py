"""The GitRepo's status as the steps write it: each step's own conditions (SourceFetched/FetchFailed, BuildFailed,
Applied), the fields of what was fetched and applied, the progress patches (Reconciling with the step as reason),
and the last word, Ready/Reconciling/Stalled, left to the summariser over `gitrepo.READINESS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from proxnix.adapters.git import Fetched
from proxnix.adapters.nix import BuiltImage as Built
from proxnix.api.conditions import ConditionStatus, ConditionType, set_condition
from proxnix.api.gitrepo import (
    READINESS,
    BuiltImage,
    GitRepoProgress,
    GitRepoStatus,
    InventoryEntry,
    PlanSummary,
)
from proxnix.api.summarize import Problem, mark_progressing, summarize
from proxnix.reconcile.gitrepo.ref import GitRepoRef

SUCCEEDED = "Succeeded"


def short_sha(revision: str) -> str:
    return revision[:12]


def _put(
    status: GitRepoStatus, generation: int, type_: str, value: ConditionStatus, reason: str, message: str
) -> None:
    status.conditions = set_condition(status.conditions, type_, value, reason, message, generation)


def begin(ref: GitRepoRef) -> GitRepoStatus:
    """The status a reconcile starts from: the last one, with the handled `requested-at` echoed."""
    status = ref.status.model_copy(deep=True)
    if ref.requested_at:
        status.last_handled_reconcile_at = ref.requested_at
    return status


def progress(ref: GitRepoRef, step: GitRepoProgress, message: str) -> dict[str, object]:
    """A status patch announcing the step in progress: Reconciling=True with the step as reason (Ready untouched)."""
    status = ref.status.model_copy(deep=True)
    mark_progressing(status, generation=ref.generation, message=message, reason=step.value)
    return {"conditions": [c.model_dump(mode="json", by_alias=True) for c in status.conditions]}


# --- fetch ------------------------------------------------------------------------------------------------------------


def fetched(status: GitRepoStatus, generation: int, what: str, result: Fetched) -> None:
    status.last_fetched_revision = result.revision
    message = f"fetched {what} at {short_sha(result.revision)}: {result.message}"
    _put(status, generation, ConditionType.SOURCE_FETCHED, "True", SUCCEEDED, message)
    _put(status, generation, ConditionType.FETCH_FAILED, "False", SUCCEEDED, "")


def fetch_failed(status: GitRepoStatus, generation: int, reason: str, message: str) -> None:
    _put(status, generation, ConditionType.SOURCE_FETCHED, "False", reason, message)
    _put(status, generation, ConditionType.FETCH_FAILED, "True", reason, message)


# --- build ------------------------------------------------------------------------------------------------------------


def built(status: GitRepoStatus, generation: int, revision: str) -> None:
    message = f"images of {short_sha(revision)} built"
    _put(status, generation, ConditionType.BUILD_FAILED, "False", SUCCEEDED, message)


def build_failed(status: GitRepoStatus, generation: int, reason: str, message: str) -> None:
    _put(status, generation, ConditionType.BUILD_FAILED, "True", reason, message)


# --- apply ------------------------------------------------------------------------------------------------------------


def not_applied(status: GitRepoStatus, generation: int, revision: str, problem: Problem) -> Problem:
    """The revision is not applied (a rejected commit, a failed evaluation or build, a held prune, an API error):
    Applied=False, saying which VMs keep running as they were. Returns the problem with that message."""
    kept = status.last_applied_revision
    where = f"the VMs keep running as applied from {short_sha(kept)}" if kept else "nothing was applied"
    message = f"revision {short_sha(revision)} not applied: {problem.message} ({where})"
    _put(status, generation, ConditionType.APPLIED, "False", problem.reason, message)
    return Problem(problem.reason, message, stalled=problem.stalled, unknown=problem.unknown)


def applied(
    status: GitRepoStatus,
    generation: int,
    result: Fetched,
    images: Mapping[str, Built],
    plan: PlanSummary,
    *,
    record_plan: bool = True,
) -> str:
    """The revision is applied: its revision, message, images and (`record_plan`) plan; Applied=True. Returns the
    message. A re-check of the applied revision that changed nothing keeps the plan that applied it, and the
    message (Applied, and Ready once the VMs are) keeps saying what that plan did."""
    status.last_applied_revision = result.revision
    status.last_applied_message = result.message
    status.images = [
        BuiltImage(name=name, store_path=image.store_path, file=image.file, sha256=image.sha256)
        for name, image in sorted(images.items())
    ]
    if record_plan or status.last_plan is None:
        status.last_plan = plan
    message = f"applied {short_sha(result.revision)} ({result.message}): {plan_counts(status.last_plan)}"
    _put(status, generation, ConditionType.APPLIED, "True", SUCCEEDED, message)
    return message


def plan_counts(plan: PlanSummary) -> str:
    """`2 created, 1 updated, 1 blocked` (empty buckets left out)."""
    buckets: dict[str, Sequence[object]] = {
        "created": plan.created,
        "updated": plan.updated,
        "reimaged": plan.reimaged,
        "pruned": plan.pruned,
        "unchanged": plan.unchanged,
        "blocked": plan.blocked,
    }
    parts = [f"{len(names)} {bucket}" for bucket, names in buckets.items() if names]
    return ", ".join(parts) or "no VMs"


def known_sha256(status: GitRepoStatus) -> dict[str, str]:
    """Image file → sha256 from the status (saves hashing again after a restart)."""
    return {image.file: image.sha256 for image in status.images if image.file and image.sha256}


# --- report -----------------------------------------------------------------------------------------------------------


def finish(
    status: GitRepoStatus,
    generation: int,
    *,
    inventory: Sequence[InventoryEntry] | None,
    problem: Problem | None,
    ready_message: str = "",
) -> GitRepoStatus:
    """The final status: the inventory (when it was read) and Ready/Reconciling/Stalled from the problem met."""
    if inventory is not None:
        status.inventory = list(inventory)
    summarize(status, READINESS, generation=generation, problem=problem, ready_message=ready_message)
    return status
