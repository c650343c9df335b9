"""Property test: arbitrary bodies and headers at the aiohttp handler never give a 5xx, never patch unsigned.

The store holds GitRepos for every fixture repository, each with a webhook secret the generated requests never
know; some generated requests reuse real fixture bodies and headers (with made-up signatures) so the search reaches
the verification step, not only the parsers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxnix.webhook.memory import MemoryStore
from proxnix.webhook.sidecar import create_sidecar
from tests.webhook.cases import CASES

UNKNOWN_SECRET = b"never-sent-by-the-fuzzer"
FIXTURE_NAMES = ("push", "tag_push", "branch_delete")
HEADER_NAMES = [
    "Content-Type",
    "X-GitHub-Event",
    "X-Gitea-Event",
    "X-Forgejo-Event",
    "X-Gitlab-Event",
    "X-Gitlab-Token",
    "X-Event-Key",
    "X-Hook-UUID",
    "X-Event",
    "X-Signature",
    "X-Hub-Signature",
    "X-Hub-Signature-256",
    "X-Gitea-Signature",
    "X-Forgejo-Signature",
    "Content-Encoding",
]
header_values = st.one_of(
    st.sampled_from(
        ["push", "ping", "Push Hook", "repo:push", "repo:refs_changed", "application/json", "sha256="]
    ),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.sampled_from(["0" * 40, "a" * 40]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=6))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        body = draw(st.binary(max_size=512))
    elif kind == 1:
        import json

        body = json.dumps(draw(json_values)).encode()
    else:
        case = draw(st.sampled_from(CASES))
        fixture = draw(st.sampled_from(FIXTURE_NAMES))
        body = case.body(fixture)
        if kind == 3 and body:
            at = draw(st.integers(0, len(body) - 1))
            body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
        headers = case.headers(fixture) | headers
    path = draw(st.sampled_from(["/hook", "/hook/fleet/r0", "/hook/fleet/missing", "/hook/x/y/z"]))
    return path, headers, body


def _store() -> MemoryStore:
    store = MemoryStore()
    store.secrets[("fleet", "s", "token")] = UNKNOWN_SECRET
    for i, case in enumerate(CASES):
        store.add_gitrepo("fleet", f"r{i}", case.url, branch="main", secret="s")
        store.add_gitrepo("fleet", f"t{i}", case.url, tag=case.tag, secret="s")
    return store


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(requests(), min_size=1, max_size=5))
def test_arbitrary_requests_get_2xx_or_4xx_and_never_patch(
    batch: list[tuple[str, dict[str, str], bytes]],
) -> None:
    async def run() -> None:
        store = _store()
        sidecar = create_sidecar(store, max_body_bytes=64 * 1024)
        client: TestClient[Any, Any] = TestClient(TestServer(sidecar.app))
        await client.start_server()
        try:
            await asyncio.wait_for(sidecar.index.wait_synced(), 5)
            for path, headers, body in batch:
                response = await client.post(path, data=body, headers=headers)
                assert 200 <= response.status < 500, (response.status, await response.text())
                assert store.patches == []
        finally:
            await client.close()

    asyncio.run(run())
