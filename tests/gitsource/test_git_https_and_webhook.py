"""https credentials through askpass (never in the URL) against a real smart-HTTP server, and the test git server's
post-receive hook sending a signed push webhook the sidecar's parser accepts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from proxnix.adapters.git import GitError, GitSource
from proxnix.api.gitrepo import GitRef
from proxnix.sources.gitsource import GitCredentials, GitErrorKind
from proxnix.sources.webhooks.events import Push, RefUpdate
from proxnix.sources.webhooks.parsing import classify
from proxnix.sources.webhooks.providers import Provider, detect
from proxnix.sources.webhooks.signatures import verify
from proxnix.sources.webhooks.urls import repo_key
from proxnix_testbed.gitserver import GitServer, WebhookTarget
from tests.gitsource.conftest import KEY
from tests.support.githttp import serving
from tests.support.gitwork import WorkingCopy

TOKEN = "glpat-s3cr3t-t0ken"


async def test_https_with_username_and_token(
    tmp_path: Path, git_server: GitServer, source: GitSource
) -> None:
    git_server.create_repo("fleet")
    work = WorkingCopy(tmp_path / "work", git_server.file_url("fleet"))
    head = work.commit("over https")
    work.push()
    with serving(git_server.repos, "bot", TOKEN) as http:
        url = http.url("fleet")
        fetched = await source.fetch(
            KEY, url, GitRef(branch="main"), GitCredentials(username="bot", password=TOKEN)
        )
        assert fetched.revision == head
        assert any(authorized for _, authorized in http.requests)
        assert all(TOKEN not in path for path, _ in http.requests)
        config = (source.cache_path(KEY) / "config").read_text()
        assert TOKEN not in config
        assert "bot" not in config
        with pytest.raises(GitError) as caught:
            await source.fetch(
                KEY, url, GitRef(branch="main"), GitCredentials(username="bot", password="wrong")
            )
        assert caught.value.kind is GitErrorKind.AUTH
        assert TOKEN not in caught.value.message
        assert "wrong" not in caught.value.message
        with pytest.raises(GitError) as caught:
            await source.fetch(KEY, url, GitRef(branch="main"), None)
        assert caught.value.kind is GitErrorKind.AUTH


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("Content-Length", "8")
        self.end_headers()
        self.wfile.write(b"accepted")
        self.server.arrived.set()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_push_sends_a_signed_webhook(tmp_path: Path, git_server: GitServer, receiver: _Receiver) -> None:
    secret = b"hook-secret"
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    git_server.create_repo("hooked", WebhookTarget(url=url, secret=secret))
    work = WorkingCopy(tmp_path / "work", git_server.ssh_url("hooked"), git_server.ssh_command())
    head = work.commit("first")
    output = work.push()
    assert receiver.arrived.wait(10)
    assert f"remote: proxnix webhook: refs/heads/main {head[:12]} -> 202 accepted" in output
    headers, body = receiver.received[0]
    detection = detect(headers)
    assert detection is not None
    assert detection.provider is Provider.GITHUB
    assert verify(headers, body, secret, Provider.GITHUB)
    assert not verify(headers, body, b"other-secret", Provider.GITHUB)
    push = classify(detection, json.loads(body))
    assert isinstance(push, Push)
    assert push.refs == (RefUpdate("refs/heads/main", head),)
    assert push.repo_keys == {repo_key(git_server.ssh_url("hooked"))}
    assert git_server.deliveries("hooked") == [
        {"ref": "refs/heads/main", "after": head, "status": 202, "response": "accepted"}
    ]


def test_an_unreachable_webhook_does_not_fail_the_push(tmp_path: Path, git_server: GitServer) -> None:
    git_server.create_repo("lonely", WebhookTarget(url="http://127.0.0.1:9/hook", secret=b"s"))
    work = WorkingCopy(tmp_path / "work", git_server.ssh_url("lonely"), git_server.ssh_command())
    work.commit("first")
    output = work.push()
    assert "-> not delivered" in output
    assert git_server.deliveries("lonely")[0]["status"] == 0
