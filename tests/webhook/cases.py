"""The fixture table: for each sender's fixture, what it must parse to and which GitRepo it must (not) mark.

Each provider's GitRepos follow `main`; `tag` names the tag its tag-push fixture pushes. `url` is the GitRepo's
`spec.url`, deliberately spelled differently from the payload's URLs (ssh vs https, case, `.git`) to exercise matching.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from proxnix.sources.webhooks.providers import Provider

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"


@dataclass(frozen=True)
class ProviderCase:
    """One sender: its fixtures and the GitRepo url/tag they belong to."""

    provider: Provider
    url: str
    repo_key: str
    push_revision: str
    tag: str
    tag_revision: str
    nonpush: str  # the ping (or another non-push event) fixture

    def body(self, fixture: str) -> bytes:
        return (FIXTURES / self.provider.value / f"{fixture}.json").read_bytes()

    def headers(self, fixture: str) -> dict[str, str]:
        loaded: dict[str, str] = json.loads(
            (FIXTURES / self.provider.value / f"{fixture}.headers.json").read_text()
        )
        return loaded


CASES: tuple[ProviderCase, ...] = (
    ProviderCase(
        Provider.GITHUB,
        url="ssh://git@GitHub.com/Octo-Org/infra.git",
        repo_key="github.com/Octo-Org/infra",
        push_revision="0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        tag="v1.2.0",
        tag_revision="0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",  # head_commit, not the annotated tag object
        nonpush="ping",
    ),
    ProviderCase(
        Provider.GITEA,
        url="https://gitea.example.com/ops/fleet",
        repo_key="gitea.example.com/ops/fleet",
        push_revision="a3c1e1b9f07d4e2f9c6b5a4d3e2f1a0b9c8d7e6f",
        tag="v2024.05.15",
        tag_revision="a3c1e1b9f07d4e2f9c6b5a4d3e2f1a0b9c8d7e6f",
        nonpush="create",
    ),
    ProviderCase(
        Provider.FORGEJO,
        url="ssh://git@code.example.org:2222/ops/fleet.git",
        repo_key="code.example.org:2222/ops/fleet",
        push_revision="b7d2c8e4a1f6093e5d4c3b2a1f0e9d8c7b6a5f40",
        tag="v2024.05.15",
        tag_revision="b7d2c8e4a1f6093e5d4c3b2a1f0e9d8c7b6a5f40",
        nonpush="create",
    ),
    ProviderCase(
        Provider.GITLAB,
        url="https://gitlab.example.com/platform/infra.git",
        repo_key="gitlab.example.com/platform/infra",
        push_revision="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        tag="v1.0.0",
        tag_revision="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",  # checkout_sha, not the tag object
        nonpush="merge_request",
    ),
    ProviderCase(
        Provider.BITBUCKET_CLOUD,
        url="git@bitbucket.org:acme/fleet.git",
        repo_key="bitbucket.org/acme/fleet",
        push_revision="e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0",
        tag="release-7",
        tag_revision="f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1",
        nonpush="commit_status",
    ),
    ProviderCase(
        Provider.BITBUCKET_SERVER,
        url="https://Bitbucket.Example.com/scm/ops/fleet/",
        repo_key="bitbucket.example.com/scm/ops/fleet",
        push_revision="178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
        tag="v3.1",
        tag_revision="2d8897c9ac29ce42c3442cf80ac977057045e7f6",
        nonpush="ping",
    ),
    ProviderCase(
        Provider.GENERIC,
        url="https://git.internal.example:8443/infra/fleet",
        repo_key="git.internal.example:8443/infra/fleet",
        push_revision="3b18e512dba79e4c8300dd08aeb37f8e728b8dad",
        tag="v9",
        tag_revision="3b18e512dba79e4c8300dd08aeb37f8e728b8dad",
        nonpush="ping",
    ),
)
CASE_IDS = [case.provider.value for case in CASES]
