"""Reading push payloads of each git server: the pushed refs, their new commits, and the repository's URLs.

Shapes (from each server's documented payloads; fixtures in tests/fixtures/webhooks/<provider>/):
- GitHub, Gitea, Forgejo, generic: `ref`, `after` (all zeros when deleted; GitHub also sets `deleted: true`),
  `head_commit.id` (the commit an annotated tag points at), `repository.{clone_url, ssh_url, html_url, git_url, url}`.
- GitLab (`Push Hook`, `Tag Push Hook`, system hooks): `ref`, `checkout_sha` (null when deleted), `after`,
  `project.{git_ssh_url, git_http_url, web_url}`, `repository.{url, homepage, git_ssh_url, git_http_url}`.
- Bitbucket Cloud (`repo:push`): `push.changes[].new.{type, name, target.hash}` (`new` null when deleted; the ref name
  then comes from `old`), `repository.links.html.href`.
- Bitbucket Server (`repo:refs_changed`): `changes[].{refId, toHash, type}` (toHash all zeros on DELETE),
  `repository.links.clone[].href`.
A push that declares itself a push but lacks these is a `PayloadError`. Values are validated, never trusted: refs
must be full names, commits 40 (or 64, SHA-256 repositories) hex digits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from proxnix.sources.webhooks.events import Event, Ignored, PayloadError, Ping, Push, RefUpdate
from proxnix.sources.webhooks.providers import Detection, Provider
from proxnix.sources.webhooks.urls import repo_key

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_REF = re.compile(r"refs/[A-Za-z0-9._/+-]{1,250}")
_URL_FIELDS = (
    "clone_url",
    "ssh_url",
    "git_url",
    "html_url",
    "url",
    "git_http_url",
    "git_ssh_url",
    "http_url",
    "web_url",
    "homepage",
)
_MAX_CHANGES = 256


def _obj(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _revision(value: object) -> str | None:
    """A commit id, or None for a deleted ref (all zeros, null); anything else is a PayloadError."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA.fullmatch(value.lower()):
        raise PayloadError("the new commit is not a commit id")
    value = value.lower()
    return None if value.strip("0") == "" else value


def _ref(value: object) -> str:
    if not isinstance(value, str) or not _REF.fullmatch(value) or ".." in value:
        raise PayloadError("the pushed ref is not a full ref name (refs/heads/... or refs/tags/...)")
    return value


def _urls_of(*holders: object) -> Iterator[str]:
    for holder in holders:
        if isinstance(holder, str):
            yield holder
            continue
        fields = _obj(holder)
        for field in _URL_FIELDS:
            value = fields.get(field)
            if isinstance(value, str):
                yield value


def _keys(urls: Iterator[str]) -> frozenset[str]:
    return frozenset(key for key in map(repo_key, urls) if key is not None)


def parse_github_like(payload: Mapping[str, object]) -> Push:
    """GitHub, Gitea, Forgejo and generic pushes."""
    ref = _ref(payload.get("ref"))
    after = payload.get("after")
    if not isinstance(after, str):
        raise PayloadError("the push has no `after` commit")
    revision = _revision(after)
    if payload.get("deleted") is True:
        revision = None
    if revision is not None and ref.startswith("refs/tags/"):
        head = _obj(payload.get("head_commit")).get("id")
        if isinstance(head, str) and _SHA.fullmatch(head.lower()):
            revision = head.lower()
    return Push((RefUpdate(ref, revision),), _keys(_urls_of(payload.get("repository"))))


def parse_gitlab(payload: Mapping[str, object]) -> Push:
    """GitLab push and tag push hooks (project and system hooks alike)."""
    ref = _ref(payload.get("ref"))
    after = payload.get("after")
    if isinstance(after, str) and after != "" and after.strip("0") == "":
        revision = None  # a deleted ref: `after` is all zeros (and checkout_sha null)
    elif "checkout_sha" in payload:
        revision = _revision(payload.get("checkout_sha"))
    else:
        revision = _revision(after)
    urls = _urls_of(payload.get("project"), payload.get("repository"))
    return Push((RefUpdate(ref, revision),), _keys(urls))


def _bitbucket_cloud_ref(state: Mapping[str, object]) -> str | None:
    kind, name = state.get("type"), state.get("name")
    if not isinstance(name, str):
        return None
    if kind == "branch":
        return _ref(f"refs/heads/{name}")
    if kind == "tag":
        return _ref(f"refs/tags/{name}")
    return None


def parse_bitbucket_cloud(payload: Mapping[str, object]) -> Push:
    """Bitbucket Cloud `repo:push`: one entry per ref in `push.changes`."""
    changes = _obj(payload.get("push")).get("changes")
    if not isinstance(changes, list):
        raise PayloadError("repo:push payload has no push.changes list")
    updates: list[RefUpdate] = []
    for change in changes[:_MAX_CHANGES]:
        new, old = _obj(change).get("new"), _obj(change).get("old")
        if isinstance(new, dict):
            ref = _bitbucket_cloud_ref(new)
            if ref is not None:
                updates.append(RefUpdate(ref, _revision(_obj(new.get("target")).get("hash"))))
        elif isinstance(old, dict):
            ref = _bitbucket_cloud_ref(old)
            if ref is not None:
                updates.append(RefUpdate(ref, None))
    links = _obj(_obj(payload.get("repository")).get("links"))
    urls = [_obj(links.get("html")).get("href")]
    clone = links.get("clone")
    if isinstance(clone, list):
        urls.extend(_obj(entry).get("href") for entry in clone)
    return Push(tuple(updates), _keys(u for u in urls if isinstance(u, str)))


def parse_bitbucket_server(payload: Mapping[str, object]) -> Push:
    """Bitbucket Server / Data Center `repo:refs_changed`: one entry per ref in `changes`."""
    changes = payload.get("changes")
    if not isinstance(changes, list):
        raise PayloadError("repo:refs_changed payload has no changes list")
    updates: list[RefUpdate] = []
    for change in changes[:_MAX_CHANGES]:
        fields = _obj(change)
        ref = fields.get("refId", _obj(fields.get("ref")).get("id"))
        revision = None if fields.get("type") == "DELETE" else _revision(fields.get("toHash"))
        updates.append(RefUpdate(_ref(ref), revision))
    clone = _obj(_obj(payload.get("repository")).get("links")).get("clone")
    urls = [_obj(entry).get("href") for entry in clone] if isinstance(clone, list) else []
    return Push(tuple(updates), _keys(u for u in urls if isinstance(u, str)))


def _guess(payload: Mapping[str, object]) -> Event:
    """An event from a body alone (the per-GitRepo path, where the sender could not be told from headers)."""
    if payload.get("eventKey") == "diagnostics:ping" or ("zen" in payload and "hook_id" in payload):
        return Ping()
    if isinstance(_obj(payload.get("push")).get("changes"), list):
        return parse_bitbucket_cloud(payload)
    if isinstance(payload.get("changes"), list):
        return parse_bitbucket_server(payload)
    if payload.get("object_kind") in ("push", "tag_push"):
        return parse_gitlab(payload)
    if "ref" in payload and "after" in payload:
        return parse_github_like(payload)
    return Ignored("unknown", "the body is not a push payload of any known git server")


def _gitlab_event(event: str, payload: Mapping[str, object]) -> Event:
    if event in ("Push Hook", "Tag Push Hook"):
        return parse_gitlab(payload)
    if event == "System Hook" and payload.get("object_kind", payload.get("event_name")) in (
        "push",
        "tag_push",
    ):
        return parse_gitlab(payload)
    return Ignored(event, f"GitLab event {event!r} is not a push")


def classify(detection: Detection | None, payload: object) -> Event:
    """What a payload means, given who sent it (None: unknown sender, guess from the body)."""
    if not isinstance(payload, dict):
        raise PayloadError("the payload is not a JSON object")
    if detection is None:
        return _guess(payload)
    provider, event = detection.provider, detection.event
    if provider in (Provider.GITHUB, Provider.GITEA, Provider.FORGEJO):
        if event == "push":
            return parse_github_like(payload)
        if event == "ping":
            return Ping()
        return Ignored(event, f"{provider.value} event {event!r} is not a push")
    if provider is Provider.GITLAB:
        return _gitlab_event(event, payload)
    if provider is Provider.BITBUCKET_CLOUD:
        if event == "repo:push":
            return parse_bitbucket_cloud(payload)
        return Ignored(event, f"Bitbucket Cloud event {event!r} is not a push")
    if provider is Provider.BITBUCKET_SERVER:
        if event == "repo:refs_changed":
            return parse_bitbucket_server(payload)
        if event == "diagnostics:ping":
            return Ping()
        return Ignored(event, f"Bitbucket Server event {event!r} is not a push")
    if event == "ping":
        return Ping()
    if event == "push":
        return _guess(payload)
    return Ignored(event, f"generic event {event!r} is not a push")
