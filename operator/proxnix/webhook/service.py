"""What one webhook request does, independent of HTTP: decide, verify, mark. `PushService.handle` → `Answer`.

Order of work, cheapest refusal first: tell the sender from the headers; decode and classify the body (pure, defensive);
answer pings and non-push events; find the GitRepos that follow a pushed ref of this repository (from the index);
verify the signature with each candidate's own secret — a GitRepo is marked only if the request verifies with ITS
secret (or, with `insecure`, if it has no webhook secret at all); then merge-patch the verified ones with the revision
hint and `requested-at`. When nothing verifies, the caches may be stale (a rotated secret, a changed secretRef), so the
GitRepos and secrets are re-read once (rate-limited, see `index`) before refusing with 401.

Statuses: 200 ping / ignored / unmatched / deletion-only; 202 marked; 400 malformed or unknown sender; 401 unsigned or
badly signed; 404 unknown GitRepo on the per-GitRepo path; 415 content type; 503 the Kubernetes API failed. Never 429:
a push during a build is recorded on the GitRepo, and the controller coalesces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxnix.api.clock import now_rfc3339
from proxnix.api.meta import ANNOTATION_REQUESTED_AT, ANNOTATION_REVISION
from proxnix.sources.webhooks import signatures
from proxnix.sources.webhooks.events import Ignored, PayloadError, Ping, Push, UnsupportedMediaType
from proxnix.sources.webhooks.matching import revision_for
from proxnix.sources.webhooks.parsing import classify
from proxnix.sources.webhooks.payloads import decode
from proxnix.sources.webhooks.providers import Detection, Provider, detect, lower_headers
from proxnix.webhook.index import GitRepoIndex, SecretCache
from proxnix.webhook.store import GitRepoEntry, GitRepoStore

log = logging.getLogger(__name__)

UNKNOWN_PROVIDER = "unknown"


@dataclass(frozen=True)
class Answer:
    """The answer to one request: HTTP status, JSON body, and the labels it is counted under."""

    status: int
    body: dict[str, Any]
    provider: str
    outcome: str
    marked: tuple[str, ...] = field(default=())


class KubeUnavailable(Exception):
    """The Kubernetes API could not be reached or refused a call (answered 503)."""


def _status_of(exc: BaseException) -> int:
    status = getattr(exc, "status", 0)
    return status if isinstance(status, int) else 0


class PushService:
    """Handles webhook requests against a GitRepo index, a secret cache and a store to patch through."""

    def __init__(
        self,
        store: GitRepoStore,
        index: GitRepoIndex,
        secrets: SecretCache,
        *,
        insecure: bool = False,
        namespace: str | None = None,
    ) -> None:
        self._store = store
        self._index = index
        self._secrets = secrets
        self._insecure = insecure
        self._namespace = namespace
        self._patching: dict[tuple[str, str, str], asyncio.Task[None]] = {}

    async def handle(
        self,
        headers: Mapping[str, str],
        content_type: str | None,
        body: bytes,
        target: tuple[str, str] | None = None,
    ) -> Answer:
        """Answer one request; `target` is (namespace, name) on the per-GitRepo path."""
        lowered = lower_headers(headers)
        detection = detect(lowered)
        label = detection.provider.value if detection else UNKNOWN_PROVIDER
        if detection is None and target is None:
            return Answer(
                400,
                {
                    "error": "unknown sender",
                    "reason": "no known event or signature header (X-GitHub-Event, X-Gitea-Event, X-Forgejo-Event, "
                    "X-Gitlab-Event, X-Event-Key, X-Signature); use /hook/<namespace>/<name>",
                },
                label,
                "bad_request",
            )
        try:
            event = classify(detection, decode(content_type, body))
        except UnsupportedMediaType as exc:
            return Answer(
                415, {"error": "unsupported media type", "reason": str(exc)}, label, "unsupported_media_type"
            )
        except PayloadError as exc:
            return Answer(400, {"error": "bad payload", "reason": str(exc)}, label, "bad_request")
        if isinstance(event, Ping):
            return Answer(200, {"result": "pong"}, label, "ping")
        if isinstance(event, Ignored):
            return Answer(
                200, {"result": "ignored", "event": event.event, "reason": event.reason}, label, "ignored"
            )
        return await self._push(event, lowered, body, detection, target, label)

    async def _push(
        self,
        push: Push,
        headers: Mapping[str, str],
        body: bytes,
        detection: Detection | None,
        target: tuple[str, str] | None,
        label: str,
    ) -> Answer:
        refs = sorted({update.ref for update in push.refs})
        if push.only_deletions:
            reason = "the push only deletes refs; nothing to build"
            return Answer(200, {"result": "ignored", "refs": refs, "reason": reason}, label, "ignored")
        if target is not None and self._namespace not in (None, target[0]):
            return Answer(404, {"error": "not found", "reason": "namespace not served"}, label, "not_found")
        if target is None and not push.repo_keys:
            reason = "the payload names no repository URL; use /hook/<namespace>/<name>"
            return Answer(400, {"error": "bad payload", "reason": reason}, label, "bad_request")
        try:
            candidates = await self._candidates(push, target)
            if candidates is None:
                assert target is not None
                reason = f"no GitRepo {target[0]}/{target[1]}"
                return Answer(404, {"error": "not found", "reason": reason}, label, "not_found")
            if not candidates:
                reason = "no GitRepo follows a pushed ref of this repository"
                return Answer(
                    200,
                    {"result": "unmatched", "refs": refs, "matched": [], "reason": reason},
                    label,
                    "unmatched",
                )
            provider = detection.provider if detection else None
            verified = await self._verify(candidates, headers, body, provider, fresh=False)
            if not verified and signatures.is_signed(headers, provider):
                # Maybe stale: a rotated secret or a changed secretRef. Re-read both (rate-limited), try once more.
                try:
                    await self._index.refresh_after_miss()
                except Exception as exc:
                    raise KubeUnavailable(f"cannot list GitRepos: {exc}") from exc
                candidates = await self._candidates(push, target) or []
                verified = await self._verify(candidates, headers, body, provider, fresh=True)
            if not verified:
                log.warning(
                    "webhook refused: signature missing or wrong",
                    extra={"fields": {"provider": label, "candidates": len(candidates)}},
                )
                reason = (
                    "no GitRepo following this push accepts it: the signature is missing or wrong, "
                    "or the GitRepo has no webhook secret (spec.webhook.secretRef)"
                )
                return Answer(401, {"error": "unauthorized", "reason": reason}, label, "unauthorized")
            marked = await self._mark(verified, push)
        except KubeUnavailable as exc:
            return Answer(
                503, {"error": "kubernetes API unavailable", "reason": str(exc)}, label, "unavailable"
            )
        matched = [
            {"namespace": e.namespace, "name": e.name, "ref": ref, "revision": rev} for e, ref, rev in marked
        ]
        revisions = sorted({rev for _, _, rev in marked})
        body_out: dict[str, Any] = {"result": "accepted", "matched": matched}
        if len(revisions) == 1:
            body_out["revision"] = revisions[0]
        ids = tuple(e.id for e, _, _ in marked)
        return Answer(202, body_out, label, "accepted", ids)

    async def _candidates(self, push: Push, target: tuple[str, str] | None) -> list[GitRepoEntry] | None:
        """The GitRepos following a pushed ref; None on the per-GitRepo path if that GitRepo does not exist."""

        def follows(entry: GitRepoEntry) -> bool:
            return revision_for(entry.followed_ref, push) is not None

        try:
            if target is None:
                return await self._index.candidates(push.repo_keys, follows)
            entry = await self._index.named(*target)
        except Exception as exc:
            raise KubeUnavailable(f"cannot list GitRepos: {exc}") from exc
        if entry is None:
            return None
        return [entry] if follows(entry) else []

    async def _verify(
        self,
        candidates: list[GitRepoEntry],
        headers: Mapping[str, str],
        body: bytes,
        provider: Provider | None,
        *,
        fresh: bool,
    ) -> list[GitRepoEntry]:
        verified: list[GitRepoEntry] = []
        for entry in candidates:
            if entry.secret_name is None:
                if self._insecure:
                    verified.append(entry)
                continue
            try:
                secret = await self._secrets.get(entry.namespace, entry.secret_name, fresh=fresh)
            except Exception as exc:
                raise KubeUnavailable(f"cannot read the webhook secret of {entry.id}: {exc}") from exc
            if secret is not None and signatures.verify(headers, body, secret.rstrip(b"\r\n"), provider):
                verified.append(entry)
        return verified

    async def _mark(self, entries: list[GitRepoEntry], push: Push) -> list[tuple[GitRepoEntry, str, str]]:
        """Patch each entry with its revision; entries whose GitRepo is gone are dropped (and a re-list scheduled)."""
        plans: list[tuple[GitRepoEntry, str, str]] = []
        for entry in entries:
            revision = revision_for(entry.followed_ref, push)
            if revision is not None and entry.followed_ref is not None:
                plans.append((entry, entry.followed_ref, revision))
        results = await asyncio.gather(
            *(self._patch_once(entry, rev) for entry, _, rev in plans), return_exceptions=True
        )
        marked: list[tuple[GitRepoEntry, str, str]] = []
        failure: BaseException | None = None
        for plan, result in zip(plans, results, strict=True):
            if result is None:
                marked.append(plan)
                log.info(
                    "marked GitRepo",
                    extra={"fields": {"gitrepo": plan[0].id, "ref": plan[1], "revision": plan[2]}},
                )
            elif _status_of(result) == 404:
                self._index.schedule_refresh()
            elif isinstance(result, Exception):
                failure = result
            else:
                raise result
        if failure is not None:
            raise KubeUnavailable(f"cannot patch a GitRepo: {failure}") from failure
        return marked

    async def _patch_once(self, entry: GitRepoEntry, revision: str) -> None:
        """Patch one GitRepo; identical patches (same GitRepo and revision) in flight at once are sent once."""
        key = (entry.namespace, entry.name, revision)
        task = self._patching.get(key)
        if task is None:
            annotations = {
                ANNOTATION_REVISION: revision,
                ANNOTATION_REQUESTED_AT: now_rfc3339(microseconds=True),
            }
            task = asyncio.create_task(
                self._store.patch_gitrepo_annotations(entry.namespace, entry.name, annotations)
            )
            self._patching[key] = task
            task.add_done_callback(lambda done: self._patch_done(key, done))
        await asyncio.shield(task)

    def _patch_done(self, key: tuple[str, str, str], task: asyncio.Task[None]) -> None:
        if self._patching.get(key) is task:
            del self._patching[key]
        if not task.cancelled():
            task.exception()  # retrieved here too: every awaiter may have gone (client disconnected)
