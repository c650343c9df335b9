"""A real `git push` to the test git server reaches the real webhook sidecar: the post-receive hook's signed push is
verified and the GitRepo following that branch is marked with the pushed revision; another branch marks nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from proxnix.api.meta import ANNOTATION_REQUESTED_AT, ANNOTATION_REVISION
from proxnix.webhook.memory import MemoryStore
from proxnix.webhook.sidecar import create_sidecar
from proxnix_testbed.gitserver import GitServer, WebhookTarget
from tests.support.gitwork import WorkingCopy
from tests.support.kubeapi import eventually

SECRET = b"push-secret"


@pytest.fixture
def store(git_server: GitServer) -> MemoryStore:
    """Two GitRepos on the test server's repository `hooked`: one follows main, one staging."""
    store = MemoryStore()
    store.add_gitrepo("default", "fleet", git_server.ssh_url("hooked"), branch="main", secret="hook")
    store.add_gitrepo("default", "staging", git_server.ssh_url("hooked"), branch="staging", secret="hook")
    store.secrets[("default", "hook", "token")] = SECRET
    return store


@pytest.fixture
async def sidecar(store: MemoryStore) -> AsyncIterator[str]:
    """The webhook sidecar on loopback over `store`; yields its /hook URL."""
    app = create_sidecar(store)
    runner = web.AppRunner(app.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    await app.index.wait_synced()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def test_a_push_marks_the_gitrepo_following_the_branch(
    tmp_path: Path, git_server: GitServer, store: MemoryStore, sidecar: str
) -> None:
    git_server.create_repo("hooked", WebhookTarget(url=sidecar, secret=SECRET))
    work = WorkingCopy(tmp_path / "work", git_server.ssh_url("hooked"), git_server.ssh_command())
    head = work.commit("first")
    output = await asyncio.to_thread(work.push)
    assert "-> 202" in output
    marked = await eventually(
        lambda: store.annotations("default", "fleet").get(ANNOTATION_REVISION), within=10
    )
    assert marked == head
    assert store.annotations("default", "fleet")[ANNOTATION_REQUESTED_AT]
    assert ANNOTATION_REVISION not in store.annotations("default", "staging")
