"""Which git server sent a webhook, told from its headers alone.

Each server names its event in its own header (design.md, "Webhook headers"). Several send more than one: Forgejo also
sends Gitea's headers, and Gitea and Forgejo also send `X-GitHub-Event`, so the most specific header is checked first.
Bitbucket Cloud and Server share `X-Event-Key`; Cloud also sends `X-Hook-UUID`/`X-Request-UUID`, and the event keys
differ (`repo:push` vs `repo:refs_changed`). The generic sender is known by `X-Signature` or `X-Event` (`push`, `ping`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Provider(enum.StrEnum):
    """A git server family; the value is the metrics label."""

    GITHUB = "github"
    GITEA = "gitea"
    FORGEJO = "forgejo"
    GITLAB = "gitlab"
    BITBUCKET_CLOUD = "bitbucket-cloud"
    BITBUCKET_SERVER = "bitbucket-server"
    GENERIC = "generic"


@dataclass(frozen=True)
class Detection:
    """The sender and the event it declared (as the header spells it; empty if it declared none)."""

    provider: Provider
    event: str


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lowercased (HTTP header names are case-insensitive); the first of repeated names wins."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lowered.setdefault(name.lower(), value)
    return lowered


_BITBUCKET_CLOUD_PREFIXES = ("repo:push", "pullrequest:", "issue:", "repo:commit_", "project:updated")


def _bitbucket(headers: Mapping[str, str], key: str) -> Provider:
    if "x-hook-uuid" in headers or "x-request-uuid" in headers or key.startswith(_BITBUCKET_CLOUD_PREFIXES):
        return Provider.BITBUCKET_CLOUD
    return Provider.BITBUCKET_SERVER


def detect(headers: Mapping[str, str]) -> Detection | None:
    """The sender of a request with these (lowercased) headers, or None if no known header is present."""
    if "x-forgejo-event" in headers or "x-forgejo-signature" in headers:
        return Detection(Provider.FORGEJO, headers.get("x-forgejo-event", headers.get("x-gitea-event", "")))
    if "x-gitea-event" in headers or "x-gitea-signature" in headers:
        return Detection(Provider.GITEA, headers.get("x-gitea-event", ""))
    if "x-gitlab-event" in headers or "x-gitlab-token" in headers:
        return Detection(Provider.GITLAB, headers.get("x-gitlab-event", ""))
    if "x-github-event" in headers:
        return Detection(Provider.GITHUB, headers["x-github-event"])
    if "x-event-key" in headers:
        key = headers["x-event-key"]
        return Detection(_bitbucket(headers, key), key)
    if "x-signature" in headers or "x-event" in headers:
        return Detection(Provider.GENERIC, headers.get("x-event", "push"))
    return None
