"""What a webhook request means once parsed: a push of one or more refs, a ping, or something to ignore.

These values are what the sidecar acts on; they carry nothing a payload could use to reach beyond its repository:
canonical repository keys (see `urls`), full ref names, and validated commit ids.
"""

from __future__ import annotations

from dataclasses import dataclass


class PayloadError(ValueError):
    """The body is not a well-formed payload of the declared kind (answered 400)."""


class UnsupportedMediaType(ValueError):
    """The body's content type is not one the sidecar reads (answered 415)."""


@dataclass(frozen=True)
class RefUpdate:
    """One ref changed by a push: its full name (`refs/heads/x`, `refs/tags/x`) and new commit (None: deleted)."""

    ref: str
    revision: str | None


@dataclass(frozen=True)
class Push:
    """A push: the refs it changed and the canonical keys of every URL the payload gives for the repository."""

    refs: tuple[RefUpdate, ...]
    repo_keys: frozenset[str]

    @property
    def only_deletions(self) -> bool:
        """True if every ref in the push was deleted (nothing to build)."""
        return all(update.revision is None for update in self.refs)


@dataclass(frozen=True)
class Ping:
    """A connectivity test (GitHub `ping`, Bitbucket Server `diagnostics:ping`, generic `X-Event: ping`)."""


@dataclass(frozen=True)
class Ignored:
    """A well-formed event that is not a push (issues, pull requests, a Gitea `delete` event, ...)."""

    event: str
    reason: str


Event = Push | Ping | Ignored
