"""GitRepo reconcile: the steps of `steps` in order — fetch → evaluate → build → apply → prune → report — and the
deletion (`delete`), serialised per GitRepo. No kopf here; the handlers apply the returned `Outcome`.

A commit is applied whole or not at all: everything that can refuse it (the fetch, nix, the format, the checks
against the namespace, the prune guard) runs before the first ProxmoxVM is written. A burst of pushes is evaluated
and built once, at its newest commit (`bursts`). A revision already evaluated and
built by this process is not evaluated again (a poll, a readiness check, a confirmation of a held prune): the plan
is still made against a fresh view of the namespace, so a deleted or edited ProxmoxVM is put back.

Each reconcile also says when the GitRepo is next due (`due`): after `spec.interval`, sooner after a problem that
may clear, and after `VMS_PENDING` while its ProxmoxVMs are not Ready for the applied revision yet. The handlers'
timer asks `due` on every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from proxnix.adapters.git import Fetched, GitError
from proxnix.adapters.kube import KubeError
from proxnix.api.conditions import ConditionType, find_condition
from proxnix.api.gitrepo import READINESS, GitRepoProgress, GitRepoStatus
from proxnix.api.scalars import parse_duration
from proxnix.api.summarize import Problem, summarize
from proxnix.reconcile.gitrepo import bursts, steps
from proxnix.reconcile.gitrepo import status as report
from proxnix.reconcile.gitrepo.delete import delete_gitrepo
from proxnix.reconcile.gitrepo.ports import Builder, Cluster, Source, StepTimer
from proxnix.reconcile.gitrepo.ref import GitRepoRef
from proxnix.reconcile.outcome import (
    APPLY_FAILED,
    SOURCE_UNAVAILABLE,
    VMS_PENDING,
    Event,
    Outcome,
    Progress,
    Retry,
    short,
)
from proxnix.sources.flake.nix_commands import FlakeRef
from proxnix.sources.gitsource import GitCredentials

log = logging.getLogger(__name__)


@dataclass
class _Run:
    """What one reconcile learned, recorded by the step that learned it."""

    status: GitRepoStatus
    revision: str = ""
    applied_message: str = ""
    readiness: steps.Readiness | None = None
    events: list[Event] = field(default_factory=list)
    problem: Problem | None = None
    retry: Retry | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Record how long a step took (logged and reported to the `StepTimer` once the reconcile is done:
        fetch/eval/build/apply)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - start


class GitRepoReconciler:
    """Reconciles GitRepos: flake → ProxmoxVM objects. One per operator (in the kopf memo)."""

    def __init__(
        self,
        cluster: Cluster,
        source: Source,
        builder: Builder,
        timer: StepTimer | None = None,
        *,
        burst_quiet: float = bursts.QUIET_S,
        burst_limit: float = bursts.LIMIT_S,
    ) -> None:
        self.cluster = cluster
        self.source = source
        self.builder = builder
        self.timer = timer
        self.burst_quiet = burst_quiet
        self.burst_limit = burst_limit
        self._locks: dict[str, asyncio.Lock] = {}
        self._built: dict[str, steps.Built] = {}
        self._due: dict[str, float] = {}
        self._reported: dict[str, GitRepoStatus] = {}

    def lock_for(self, uid: str) -> asyncio.Lock:
        """The lock that serialises everything done for one GitRepo (change handlers, timer, delete)."""
        return self._locks.setdefault(uid, asyncio.Lock())

    def busy(self, uid: str) -> bool:
        """Whether a reconcile of this GitRepo is running now (the timer then skips it)."""
        lock = self._locks.get(uid)
        return lock is not None and lock.locked()

    def due(self, uid: str, now: float | None = None) -> bool:
        """Whether the GitRepo's next reconcile is due (never reconciled by this process: due)."""
        when = self._due.get(uid)
        return when is None or (time.monotonic() if now is None else now) >= when

    def forget(self, uid: str) -> None:
        """Drop per-object state after the object is gone."""
        self._locks.pop(uid, None)
        self._built.pop(uid, None)
        self._due.pop(uid, None)
        self._reported.pop(uid, None)

    # --- reconcile --------------------------------------------------------------------------------------------------

    async def reconcile(
        self, ref: GitRepoRef, *, progress: Progress | None = None, when_due: bool = False
    ) -> Outcome:
        """Fetch the followed ref's head; evaluate and build it unless already done; apply, prune; report.

        `when_due` (the timer): only if the GitRepo is still due once its turn comes (a change handler may have
        reconciled it meanwhile); otherwise nothing is done and the Outcome is empty. A reconcile that waited for
        another starts from the status that one reported, not from the older one its caller read."""
        async with self.lock_for(ref.uid):
            if when_due and not self.due(ref.uid):
                return Outcome()
            last = self._reported.get(ref.uid)
            if last is not None and last.observed_generation <= ref.generation:
                ref = dataclasses.replace(ref, status=last)
            run = _Run(status=report.begin(ref))
            try:
                await self._steps(ref, run, progress)
            except steps.StepFailed as exc:
                run.problem = exc.problem
                run.retry = Retry(exc.retry, exc.problem.message) if exc.retry is not None else None
            except GitError as exc:  # the checkout (submodules) after a successful fetch
                report.fetch_failed(run.status, ref.generation, exc.kind.value, exc.message)
                run.problem = Problem(exc.kind.value, exc.message)
                run.retry = Retry(SOURCE_UNAVAILABLE, exc.message)
            except KubeError as exc:
                run.problem = Problem("KubernetesError", short(exc))
                run.retry = Retry(APPLY_FAILED, run.problem.message)
            self._schedule(ref, run)
            outcome = self._report(ref, run)
            self._reported[ref.uid] = run.status.model_copy(deep=True)
        if self.timer is not None:
            for step, seconds in run.timings.items():
                self.timer.observe_step(step, seconds)
        steps_taken = ", ".join(f"{step} {seconds:.3f} s" for step, seconds in run.timings.items())
        result = run.problem.reason if run.problem is not None else "ok"
        log.info("gitrepo %s/%s %s: %s (%s)", ref.namespace, ref.name, run.revision[:12], steps_taken, result)
        return outcome

    async def _steps(self, ref: GitRepoRef, run: _Run, progress: Progress | None) -> None:
        async def announce(step: GitRepoProgress, message: str) -> None:
            if progress is not None:
                await progress(report.progress(ref, step, message))

        status = run.status
        await announce(GitRepoProgress.FETCHING, f"fetching {ref.spec.url}")
        with run.timed("fetch"):
            creds = await steps.credentials(self.cluster, ref, status)
            fetched = await steps.fetch(self.source, ref, creds, status)
        built = self._built.get(ref.uid)
        if not _built_already(built, fetched, ref):
            fetched = await self._newest_of_burst(ref, run, fetched, creds, announce)
        run.revision = fetched.revision
        if built is None or not _built_already(built, fetched, ref):
            sha = report.short_sha(fetched.revision)
            await announce(GitRepoProgress.EVALUATING, f"evaluating {sha}")
            world = await steps.observe(self.cluster, ref)
            async with self.source.checkout(
                ref.key, fetched.revision, url=ref.spec.url, credentials=creds, submodules=ref.spec.submodules
            ) as folder:
                flake = FlakeRef(str(folder), ref.spec.flake_path)
                with run.timed("eval"):
                    evaluated = await steps.evaluate(
                        self.builder, flake, ref, fetched.revision, world, status
                    )
                await announce(GitRepoProgress.BUILDING, f"building {len(evaluated.probes)} images of {sha}")
                with run.timed("build"):
                    built = await steps.build(self.builder, flake, ref, fetched.revision, evaluated, status)
            self._built[ref.uid] = built
        with run.timed("apply"):
            todo = await steps.plan(self.cluster, ref, built, status)
            if todo.has_actions:
                await announce(GitRepoProgress.APPLYING, f"applying {report.short_sha(fetched.revision)}")
            await steps.apply(self.cluster, ref, todo, fetched.revision, status)
            await steps.prune(self.cluster, ref, todo, fetched.revision, status)
        news = ref.status.last_applied_revision != fetched.revision or todo.has_actions
        run.applied_message = report.applied(
            status, ref.generation, fetched, built.images, todo.summary(fetched.revision), record_plan=news
        )
        if news:
            run.events.append(Event("Normal", "Applied", run.applied_message))
        run.readiness = await steps.readiness(self.cluster, ref)
        keep = {image.store_path for image in built.images.values()} | run.readiness.store_paths
        self.builder.drop_roots(ref.key, keep=sorted(keep))
        run.problem = steps.not_applied(todo, fetched.revision) or run.readiness.problem(fetched.revision)

    async def _newest_of_burst(
        self,
        ref: GitRepoRef,
        run: _Run,
        fetched: Fetched,
        creds: GitCredentials | None,
        announce: Callable[[GitRepoProgress, str], Awaitable[None]],
    ) -> Fetched:
        """`fetched`, or when pushes came in since this run began, the head once they stopped (see `bursts`)."""
        live = await bursts.live_state(self.cluster, ref)
        if live.mark == ref.requested_at and not live.stop:
            return fetched
        if not live.stop:
            await announce(GitRepoProgress.FETCHING, "more pushes arriving: waiting until they stop")
            with run.timed("settle"):
                live = await bursts.wait_for_quiet(
                    lambda: bursts.live_state(self.cluster, ref),
                    live,
                    quiet=self.burst_quiet,
                    limit=self.burst_limit,
                )
        if live.stop:
            raise steps.StepFailed(
                Problem("Superseded", f"{live.stop} while pushes arrived: nothing applied")
            )
        with run.timed("fetch"):
            return await steps.fetch(self.source, ref, creds, run.status)

    def _schedule(self, ref: GitRepoRef, run: _Run) -> None:
        delay = parse_duration(ref.spec.interval).total_seconds()
        if run.retry is not None:
            delay = min(delay, run.retry.policy.delay_s)
        elif run.readiness is not None and run.readiness.waiting:
            delay = min(delay, VMS_PENDING.delay_s)
        self._due[ref.uid] = time.monotonic() + delay

    @staticmethod
    def _report(ref: GitRepoRef, run: _Run) -> Outcome:
        """The last step: the final status, the Events worth posting, stall or retry."""
        problem = run.problem
        inventory = run.readiness.inventory if run.readiness is not None else None
        ready_message = ""
        if problem is None and run.readiness is not None:
            ready_message = f"{run.applied_message}; {len(run.readiness.inventory)} ProxmoxVMs Ready"
        status = report.finish(
            run.status, ref.generation, inventory=inventory, problem=problem, ready_message=ready_message
        )
        events = list(run.events)
        if problem is not None and problem.reason != "VMsNotReady" and _new_problem(ref, run, problem):
            events.append(Event("Warning", problem.reason, problem.message))
        stall = problem.message if problem is not None and problem.stalled else ""
        return Outcome(status, events, retry=None if stall else run.retry, stall=stall)

    # --- delete ----------------------------------------------------------------------------------------------------

    async def delete(self, ref: GitRepoRef) -> Outcome:
        """Orphan or delete the GitRepo's ProxmoxVMs (see `delete`); when done, drop its cache and GC roots."""
        async with self.lock_for(ref.uid):
            outcome = await delete_gitrepo(self.cluster, ref)
            if outcome.done:
                self.source.forget(ref.key)
                self.builder.drop_roots(ref.key)
        return outcome


def _built_already(built: steps.Built | None, fetched: Fetched, ref: GitRepoRef) -> bool:
    """Whether this process evaluated and built the fetched revision already (nothing to evaluate or build)."""
    return built is not None and (built.revision, built.flake_path) == (fetched.revision, ref.spec.flake_path)


def _new_problem(ref: GitRepoRef, run: _Run, problem: Problem) -> bool:
    """Whether the problem is news (another reason, or another revision than the last status said): a poll that
    meets the same problem again posts no Event."""
    before = find_condition(ref.status.conditions, ConditionType.READY)
    same_revision = run.revision == "" or run.revision == ref.status.last_fetched_revision
    return before is None or before.reason != problem.reason or not same_revision


def invalid_spec(status: GitRepoStatus, generation: int, message: str) -> Outcome:
    """The outcome for a GitRepo whose spec does not validate: Stalled until the spec changes."""
    status = status.model_copy(deep=True)
    summarize(status, READINESS, generation=generation, problem=Problem("InvalidSpec", message, stalled=True))
    return Outcome(status, stall=message)
