"""The sidecar over HTTP (aiohttp test server, in-memory store): every sender end to end, and every refusal."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from proxnix.api.meta import ANNOTATION_REQUESTED_AT, ANNOTATION_REVISION
from proxnix.sources.webhooks.providers import Provider
from proxnix.sources.webhooks.signatures import signature_headers
from proxnix.webhook.memory import MemoryStore
from tests.webhook.cases import CASE_IDS, CASES, ProviderCase
from tests.webhook.conftest import NS, SECRET, SECRET_NAME, ClientFactory, signed

Client = TestClient[Any, Any]


def _add_repos(store: MemoryStore, case: ProviderCase) -> None:
    store.add_gitrepo(NS, "main", case.url, branch="main", secret=SECRET_NAME)
    store.add_gitrepo(NS, "dev", case.url, branch="dev", secret=SECRET_NAME)
    store.add_gitrepo(NS, "tagged", case.url, tag=case.tag, secret=SECRET_NAME)
    store.add_gitrepo(NS, "pinned", case.url, commit="f" * 40, secret=SECRET_NAME)
    store.add_gitrepo(
        NS, "elsewhere", "https://example.net/other/repo.git", branch="main", secret=SECRET_NAME
    )


async def _post(
    client: Client,
    case: ProviderCase,
    fixture: str,
    headers: dict[str, str],
    body: bytes | None = None,
    path: str = "/hook",
) -> tuple[int, dict[str, Any]]:
    response = await client.post(path, data=case.body(fixture) if body is None else body, headers=headers)
    return response.status, await response.json()


def _marked(store: MemoryStore) -> set[str]:
    return {name for _, name, _ in store.patches}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_signed_push_marks_the_gitrepo_following_the_branch(
    case: ProviderCase, store: MemoryStore, make_client: ClientFactory
) -> None:
    _add_repos(store, case)
    client, _ = await make_client(store)
    status, body = await _post(client, case, "push", signed(case, "push"))
    assert status == 202, body
    assert body["matched"] == [
        {"namespace": NS, "name": "main", "ref": "refs/heads/main", "revision": case.push_revision}
    ]
    assert body["revision"] == case.push_revision
    assert _marked(store) == {"main"}
    annotations = store.annotations(NS, "main")
    assert annotations[ANNOTATION_REVISION] == case.push_revision
    assert datetime.fromisoformat(annotations[ANNOTATION_REQUESTED_AT]).tzinfo is not None


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_signed_tag_push_marks_the_gitrepo_following_the_tag(
    case: ProviderCase, store: MemoryStore, make_client: ClientFactory
) -> None:
    _add_repos(store, case)
    client, _ = await make_client(store)
    status, body = await _post(client, case, "tag_push", signed(case, "tag_push"))
    assert status == 202, body
    assert _marked(store) == {"tagged"}
    assert store.annotations(NS, "tagged")[ANNOTATION_REVISION] == case.tag_revision


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_branch_delete_marks_nothing(
    case: ProviderCase, store: MemoryStore, make_client: ClientFactory
) -> None:
    _add_repos(store, case)
    store.add_gitrepo(NS, "feature", case.url, branch="feature-x", secret=SECRET_NAME)
    client, _ = await make_client(store)
    status, body = await _post(client, case, "branch_delete", signed(case, "branch_delete"))
    assert status == 200, body
    assert body["result"] == "ignored"
    assert store.patches == []


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_ping_and_other_events_change_nothing(
    case: ProviderCase, store: MemoryStore, make_client: ClientFactory
) -> None:
    _add_repos(store, case)
    client, _ = await make_client(store)
    status, body = await _post(client, case, case.nonpush, signed(case, case.nonpush))
    assert status == 200, body
    assert body["result"] == ("pong" if case.nonpush == "ping" else "ignored")
    assert store.patches == []


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.provider is not Provider.GITLAB], ids=lambda c: c.provider.value
)
async def test_tampered_body_is_refused(
    case: ProviderCase, store: MemoryStore, make_client: ClientFactory
) -> None:
    _add_repos(store, case)
    client, _sidecar = await make_client(store)
    body = case.body("push")
    assert body.endswith(b"\n")
    tampered = body[:-1] + b" "  # one changed byte, still valid JSON
    status, answer = await _post(client, case, "push", signed(case, "push"), body=tampered)
    assert status == 401, answer
    assert store.patches == []
    metrics = (await (await client.get("/metrics")).text()).splitlines()
    assert (
        f'proxnix_webhook_requests_total{{outcome="unauthorized",provider="{case.provider.value}"}} 1.0'
        in metrics
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_wrong_secret_is_refused(
    case: ProviderCase, store: MemoryStore, make_client: ClientFactory
) -> None:
    _add_repos(store, case)
    client, _ = await make_client(store)
    status, _ = await _post(client, case, "push", signed(case, "push", secret=b"not the secret"))
    assert status == 401
    assert store.patches == []


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_unsigned_push_is_refused(
    case: ProviderCase, store: MemoryStore, make_client: ClientFactory
) -> None:
    _add_repos(store, case)
    client, _ = await make_client(store)
    status, _ = await _post(client, case, "push", case.headers("push"))
    assert status == 401
    assert store.patches == []


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_push_to_another_branch_marks_none(
    case: ProviderCase, store: MemoryStore, make_client: ClientFactory
) -> None:
    store.add_gitrepo(NS, "dev", case.url, branch="dev", secret=SECRET_NAME)
    store.add_gitrepo(NS, "pinned", case.url, commit=case.push_revision, secret=SECRET_NAME)
    client, _ = await make_client(store)
    status, body = await _post(client, case, "push", signed(case, "push"))
    assert status == 200
    assert body["result"] == "unmatched"
    assert body["matched"] == []
    assert store.patches == []


def _github_ssh_only_push() -> bytes:
    payload = json.loads(CASES[0].body("push"))
    repository = payload["repository"]
    for field in ("clone_url", "git_url", "html_url", "url", "svn_url"):
        del repository[field]
    assert repository["ssh_url"] == "git@github.com:Octo-Org/infra.git"
    return json.dumps(payload).encode()


async def test_acceptance_scp_like_ssh_url_marks_ssh_scheme_gitrepo_and_tampering_is_refused(
    store: MemoryStore, make_client: ClientFactory
) -> None:
    case = CASES[0]
    store.add_gitrepo(
        NS, "infra", "ssh://git@github.com/Octo-Org/infra.git", branch="main", secret=SECRET_NAME
    )
    client, _ = await make_client(store)
    body = _github_ssh_only_push()
    tampered = body.replace(b"web01 4 GiB", b"web01 5 GiB", 1)
    assert len(tampered) == len(body)
    assert sum(a != b for a, b in zip(body, tampered, strict=True)) == 1
    status, answer = await _post(client, case, "push", signed(case, "push", body=body), body=tampered)
    assert status == 401, answer
    assert store.patches == []
    status, answer = await _post(client, case, "push", signed(case, "push", body=body), body=body)
    assert status == 202, answer
    assert answer["matched"][0]["name"] == "infra"
    assert store.annotations(NS, "infra")[ANNOTATION_REVISION] == case.push_revision


async def test_gitlab_token_authenticates_the_sender_not_the_body(
    store: MemoryStore, make_client: ClientFactory
) -> None:
    """GitLab sends its shared token in clear; only a wrong or missing token can be refused (documented limit)."""
    case = next(c for c in CASES if c.provider is Provider.GITLAB)
    _add_repos(store, case)
    client, _ = await make_client(store)
    headers = case.headers("push") | {"X-Gitlab-Token": "wrong"}
    assert (await _post(client, case, "push", headers))[0] == 401
    tampered = case.body("push")[:-1] + b" "
    assert (await _post(client, case, "push", signed(case, "push"), body=tampered))[0] == 202


async def test_each_gitrepo_is_marked_only_with_its_own_secret(
    store: MemoryStore, make_client: ClientFactory
) -> None:
    case = CASES[0]
    store.secrets[("team-a", "hook", "token")] = b"secret-a"
    store.secrets[("team-b", "hook", "token")] = b"secret-b"
    store.add_gitrepo("team-a", "infra", case.url, secret="hook")
    store.add_gitrepo("team-b", "infra", "https://github.com/Octo-Org/infra", secret="hook")
    store.add_gitrepo(
        "team-c", "infra", case.url
    )  # no webhook secret: refused without --insecure-allow-unsigned
    client, _ = await make_client(store)
    status, body = await _post(client, case, "push", signed(case, "push", secret=b"secret-b"))
    assert status == 202
    assert [(m["namespace"], m["name"]) for m in body["matched"]] == [("team-b", "infra")]
    assert store.patches == [("team-b", "infra", store.patches[0][2])]


async def test_gitrepo_without_webhook_secret_is_refused_unless_insecure(
    store: MemoryStore, make_client: ClientFactory
) -> None:
    case = CASES[0]
    store.add_gitrepo(NS, "open", case.url)
    client, _ = await make_client(store)
    assert (await _post(client, case, "push", case.headers("push")))[0] == 401
    assert (await _post(client, case, "push", signed(case, "push")))[0] == 401
    assert store.patches == []
    insecure, _ = await make_client(store, insecure=True)
    status, body = await _post(insecure, case, "push", case.headers("push"))
    assert status == 202, body
    assert _marked(store) == {"open"}


async def test_secret_ref_to_a_missing_secret_is_refused_even_when_insecure(
    store: MemoryStore, make_client: ClientFactory
) -> None:
    case = CASES[0]
    store.add_gitrepo(NS, "infra", case.url, secret="does-not-exist")
    client, _ = await make_client(store, insecure=True)
    assert (await _post(client, case, "push", case.headers("push")))[0] == 401
    assert (await _post(client, case, "push", signed(case, "push")))[0] == 401
    assert store.patches == []


async def test_rotated_secret_is_picked_up(store: MemoryStore, make_client: ClientFactory) -> None:
    case = CASES[0]
    store.add_gitrepo(NS, "infra", case.url, secret=SECRET_NAME)
    client, _sidecar = await make_client(store, secret_min_refresh=0.0)
    assert (await _post(client, case, "push", signed(case, "push")))[0] == 202
    store.secrets[(NS, SECRET_NAME, "token")] = b"rotated"
    assert (await _post(client, case, "push", signed(case, "push", secret=b"rotated")))[0] == 202
    assert (await _post(client, case, "push", signed(case, "push")))[0] == 401


async def test_a_new_gitrepo_is_found_by_the_next_push(
    store: MemoryStore, make_client: ClientFactory
) -> None:
    case = CASES[0]
    client, _sidecar = await make_client(store, miss_interval=0.0)
    assert (await _post(client, case, "push", signed(case, "push")))[0] == 200  # nothing yet
    store.add_gitrepo(NS, "infra", case.url, secret=SECRET_NAME)
    status, body = await _post(client, case, "push", signed(case, "push"))
    assert status == 202, body


async def test_repeated_push_is_idempotent(store: MemoryStore, make_client: ClientFactory) -> None:
    case = CASES[0]
    store.add_gitrepo(NS, "infra", case.url, secret=SECRET_NAME)
    client, _ = await make_client(store)
    for _ in range(3):
        assert (await _post(client, case, "push", signed(case, "push")))[0] == 202
    assert store.annotations(NS, "infra")[ANNOTATION_REVISION] == case.push_revision
    assert len({tuple(sorted(p[2])) for p in store.patches}) == 1


async def test_per_gitrepo_path(store: MemoryStore, make_client: ClientFactory) -> None:
    case = CASES[0]
    store.add_gitrepo(NS, "infra", "https://unrelated.example/x/y", secret=SECRET_NAME)  # the path names it
    client, _ = await make_client(store)
    body = case.body("push")
    anonymous = {"Content-Type": "application/json"} | {
        "X-Hub-Signature-256": signature_headers(Provider.GITHUB, body, SECRET)["X-Hub-Signature-256"]
    }
    status, answer = await _post(client, case, "push", anonymous, path=f"/hook/{NS}/infra")
    assert status == 202, answer
    assert _marked(store) == {"infra"}
    assert (await _post(client, case, "push", anonymous, path=f"/hook/{NS}/missing"))[0] == 404
    assert (
        await _post(client, case, "push", {"Content-Type": "application/json"}, path=f"/hook/{NS}/infra")
    )[0] == 401


async def test_per_gitrepo_path_outside_the_served_namespace(
    store: MemoryStore, make_client: ClientFactory
) -> None:
    case = CASES[0]
    store.add_gitrepo("other", "infra", case.url, secret=SECRET_NAME)
    client, _ = await make_client(store, namespace=NS)
    assert (await _post(client, case, "push", signed(case, "push"), path="/hook/other/infra"))[0] == 404
    assert (await _post(client, case, "push", signed(case, "push")))[0] == 200  # not listed: unmatched
    assert store.patches == []


async def test_github_form_encoded_payload(store: MemoryStore, make_client: ClientFactory) -> None:
    from urllib.parse import urlencode

    case = CASES[0]
    store.add_gitrepo(NS, "infra", case.url, secret=SECRET_NAME)
    client, _ = await make_client(store)
    body = urlencode({"payload": case.body("push").decode()}).encode()
    headers = signed(case, "push", body=body) | {"Content-Type": "application/x-www-form-urlencoded"}
    status, answer = await _post(client, case, "push", headers, body=body)
    assert status == 202, answer


async def test_request_errors(store: MemoryStore, make_client: ClientFactory) -> None:
    case = CASES[0]
    store.add_gitrepo(NS, "infra", case.url, secret=SECRET_NAME)
    client, _ = await make_client(store, max_body_bytes=4096)
    headers = signed(case, "push")
    # 400: not JSON; no known header; a push without a repository URL
    assert (await _post(client, case, "push", headers | {"Content-Type": "application/json"}, body=b"{nope"))[
        0
    ] == 400
    assert (await _post(client, case, "push", {"Content-Type": "application/json"}))[0] == 400
    no_url = b'{"ref": "refs/heads/main", "after": "' + b"a" * 40 + b'"}'
    assert (await _post(client, case, "push", signed(case, "push", body=no_url), body=no_url))[0] == 400
    # 415: not JSON
    assert (await _post(client, case, "push", headers | {"Content-Type": "text/plain"}))[0] == 415
    # 413: too large by Content-Length, and while streaming a chunked body
    status, answer = await _post(client, case, "push", headers, body=b"x" * 5000)
    assert status == 413
    assert "4096" in answer["reason"]

    async def chunks() -> Any:
        for _ in range(100):
            yield b"y" * 1000

    response = await client.post("/hook", data=chunks(), headers=headers)
    assert response.status == 413
    # 405 on GET, 404 elsewhere
    assert (await client.get("/hook")).status == 405
    assert (await client.post("/nothing")).status == 404
    assert store.patches == []


async def test_health_readiness_and_metrics(store: MemoryStore, make_client: ClientFactory) -> None:
    store.fail_lists = True
    client, sidecar = await make_client(store, wait_synced=False)
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    case = CASES[0]
    assert (await _post(client, case, "push", signed(case, "push")))[
        0
    ] == 503  # the API is down: not a client error
    store.fail_lists = False
    store.add_gitrepo(NS, "infra", case.url, secret=SECRET_NAME)
    await sidecar.index.ensure_listed_since(0, "test")
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["gitrepos"] == 1
    assert (await _post(client, case, "push", signed(case, "push")))[0] == 202
    text = await (await client.get("/metrics")).text()
    assert 'proxnix_webhook_requests_total{outcome="accepted",provider="github"} 1.0' in text
    assert 'proxnix_webhook_request_duration_seconds_count{provider="github"}' in text
    assert "proxnix_webhook_gitrepos_marked_total 1.0" in text
    assert "proxnix_webhook_index_gitrepos 1.0" in text


async def test_logs_carry_no_secrets_or_signatures(
    store: MemoryStore, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from proxnix.webhook.logs import JsonFormatter

    case = CASES[0]
    store.add_gitrepo(NS, "infra", case.url, secret=SECRET_NAME)
    client, _ = await make_client(store)
    caplog.set_level(logging.DEBUG)
    good = signed(case, "push")
    await _post(client, case, "push", good)
    await _post(client, case, "push", signed(case, "push", secret=b"guess"))
    await _post(client, case, "push", good, body=b"{bad")
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"msg": "marked GitRepo"' in line for line in lines)
    text = "\n".join(lines)
    assert SECRET.decode() not in text
    assert "guess" not in text
    assert good["X-Hub-Signature-256"].removeprefix("sha256=") not in text
    for line in lines:
        json.loads(line)
