"""Parsing the fixture payloads of every sender: refs, revisions, repository keys; pings; non-push events."""

from __future__ import annotations

import json

import pytest

from proxnix.sources.webhooks.events import Ignored, PayloadError, Ping, Push, RefUpdate, UnsupportedMediaType
from proxnix.sources.webhooks.matching import followed_ref, revision_for
from proxnix.sources.webhooks.parsing import classify
from proxnix.sources.webhooks.payloads import decode
from proxnix.sources.webhooks.providers import Detection, Provider, detect, lower_headers
from tests.webhook.cases import CASE_IDS, CASES, ProviderCase


def _event(case: ProviderCase, fixture: str) -> object:
    headers = lower_headers(case.headers(fixture))
    detection = detect(headers)
    assert detection is not None
    assert detection.provider is case.provider
    return classify(detection, decode(headers.get("content-type"), case.body(fixture)))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_push(case: ProviderCase) -> None:
    event = _event(case, "push")
    assert isinstance(event, Push)
    assert event.refs == (RefUpdate("refs/heads/main", case.push_revision),)
    assert case.repo_key in event.repo_keys


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_tag_push(case: ProviderCase) -> None:
    event = _event(case, "tag_push")
    assert isinstance(event, Push)
    assert event.refs == (RefUpdate(f"refs/tags/{case.tag}", case.tag_revision),)
    assert case.repo_key in event.repo_keys


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_branch_delete_builds_nothing(case: ProviderCase) -> None:
    event = _event(case, "branch_delete")
    if case.provider in (Provider.GITEA, Provider.FORGEJO):
        assert isinstance(event, Ignored)  # these send a `delete` event, not a push
        return
    assert isinstance(event, Push)
    assert event.only_deletions
    assert event.refs == (RefUpdate("refs/heads/feature-x", None),)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_ping_or_other_event(case: ProviderCase) -> None:
    event = _event(case, case.nonpush)
    assert isinstance(event, Ping if case.nonpush == "ping" else Ignored)


def test_acceptance_urls_of_a_github_push() -> None:
    event = _event(CASES[0], "push")
    assert isinstance(event, Push)
    # clone_url, ssh_url (git@github.com:Octo-Org/infra.git), git_url and html_url all reduce to one key
    assert event.repo_keys == frozenset({"github.com/Octo-Org/infra"})


def test_bitbucket_server_gives_both_clone_urls() -> None:
    case = next(c for c in CASES if c.provider is Provider.BITBUCKET_SERVER)
    event = _event(case, "push")
    assert isinstance(event, Push)
    assert event.repo_keys == {"bitbucket.example.com:7999/ops/fleet", "bitbucket.example.com/scm/ops/fleet"}


def test_bitbucket_cloud_push_with_several_changes() -> None:
    case = next(c for c in CASES if c.provider is Provider.BITBUCKET_CLOUD)
    payload = json.loads(case.body("push"))
    change = payload["push"]["changes"][0]
    payload["push"]["changes"] = [
        change,
        {"old": {"type": "branch", "name": "gone", "target": {"hash": "1" * 40}}, "new": None},
        {"old": None, "new": {"type": "tag", "name": "v1", "target": {"hash": "2" * 40}}},
    ]
    event = classify(Detection(Provider.BITBUCKET_CLOUD, "repo:push"), payload)
    assert isinstance(event, Push)
    assert event.refs == (
        RefUpdate("refs/heads/main", case.push_revision),
        RefUpdate("refs/heads/gone", None),
        RefUpdate("refs/tags/v1", "2" * 40),
    )


@pytest.mark.parametrize(
    ("headers", "provider", "event"),
    [
        ({"X-GitHub-Event": "push"}, Provider.GITHUB, "push"),
        ({"X-Gitea-Event": "push", "X-GitHub-Event": "push"}, Provider.GITEA, "push"),
        (
            {"X-Forgejo-Event": "push", "X-Gitea-Event": "push", "X-GitHub-Event": "push"},
            Provider.FORGEJO,
            "push",
        ),
        ({"X-Gitlab-Event": "Push Hook"}, Provider.GITLAB, "Push Hook"),
        ({"X-Event-Key": "repo:push", "X-Hook-UUID": "x"}, Provider.BITBUCKET_CLOUD, "repo:push"),
        ({"X-Event-Key": "repo:push"}, Provider.BITBUCKET_CLOUD, "repo:push"),
        (
            {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "x"},
            Provider.BITBUCKET_SERVER,
            "repo:refs_changed",
        ),
        ({"X-Event-Key": "diagnostics:ping"}, Provider.BITBUCKET_SERVER, "diagnostics:ping"),
        ({"X-Signature": "sha256=00"}, Provider.GENERIC, "push"),
        ({"X-Signature": "sha256=00", "X-Event": "ping"}, Provider.GENERIC, "ping"),
    ],
)
def test_detection(headers: dict[str, str], provider: Provider, event: str) -> None:
    assert detect(lower_headers(headers)) == Detection(provider, event)


def test_no_known_header_is_no_detection() -> None:
    assert (
        detect(lower_headers({"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"}))
        is None
    )


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "push",
        {"ref": "refs/heads/main"},  # a push without a new commit
        {"ref": "main", "after": "a" * 40},  # not a full ref name
        {"ref": "refs/heads/../x", "after": "a" * 40},
        {"ref": "refs/heads/main", "after": "not-a-sha"},
        {"ref": "refs/heads/main", "after": "a" * 39},
        {"ref": 7, "after": "a" * 40},
    ],
)
def test_malformed_github_pushes_are_payload_errors(payload: object) -> None:
    with pytest.raises(PayloadError):
        classify(Detection(Provider.GITHUB, "push"), payload)


def test_malformed_bitbucket_pushes_are_payload_errors() -> None:
    with pytest.raises(PayloadError):
        classify(Detection(Provider.BITBUCKET_CLOUD, "repo:push"), {"push": {}})
    with pytest.raises(PayloadError):
        classify(Detection(Provider.BITBUCKET_SERVER, "repo:refs_changed"), {"changes": [{"refId": "x"}]})


def test_uppercase_sha_is_lowercased_and_sha256_repositories_are_accepted() -> None:
    event = classify(Detection(Provider.GITHUB, "push"), {"ref": "refs/heads/main", "after": "AB" * 20})
    assert isinstance(event, Push)
    assert event.refs[0].revision == "ab" * 20
    event = classify(Detection(Provider.GITHUB, "push"), {"ref": "refs/heads/main", "after": "c" * 64})
    assert isinstance(event, Push)
    assert event.refs[0].revision == "c" * 64


def test_gitlab_system_hook_push() -> None:
    case = next(c for c in CASES if c.provider is Provider.GITLAB)
    event = classify(Detection(Provider.GITLAB, "System Hook"), json.loads(case.body("push")))
    assert isinstance(event, Push)
    assert event.refs[0].revision == case.push_revision


def test_decode() -> None:
    assert decode("application/json; charset=utf-8", b'{"a": 1}') == {"a": 1}
    assert decode("application/vnd.custom+json", b"[]") == []
    assert decode("application/x-www-form-urlencoded", b"payload=%7B%22a%22%3A1%7D") == {"a": 1}
    with pytest.raises(UnsupportedMediaType):
        decode("text/plain", b"{}")
    with pytest.raises(UnsupportedMediaType):
        decode(None, b"{}")
    for bad in (b"{", b"\xff\xfe", b"[" * 100_000, b"1" * 5000):
        with pytest.raises(PayloadError):
            decode("application/json", bad)
    with pytest.raises(PayloadError):
        decode("application/x-www-form-urlencoded", b"other=1")


@pytest.mark.parametrize(
    ("branch", "tag", "expected"),
    [
        ("main", None, "refs/heads/main"),
        ("refs/heads/dev", None, "refs/heads/dev"),
        (None, "v1", "refs/tags/v1"),
        (None, None, None),
    ],
)
def test_followed_ref(branch: str | None, tag: str | None, expected: str | None) -> None:
    assert followed_ref(branch, tag) == expected


def test_revision_for() -> None:
    push = Push((RefUpdate("refs/heads/main", "a" * 40), RefUpdate("refs/heads/old", None)), frozenset())
    assert revision_for("refs/heads/main", push) == "a" * 40
    assert revision_for("refs/heads/old", push) is None
    assert revision_for("refs/tags/main", push) is None
    assert revision_for(None, push) is None
