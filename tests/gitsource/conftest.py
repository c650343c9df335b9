"""Fixtures of the git tests: a real git server (sshd + git-shell) on loopback and a user's working copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proxnix.adapters.git import GitSource, RepoKey
from proxnix.sources.gitsource import GitCredentials
from proxnix_testbed.gitserver import GitServer
from tests.support.gitwork import WorkingCopy

KEY = RepoKey("default", "fleet")


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer.start(tmp_path / "gitserver") as server:
        yield server


@pytest.fixture
def remote(git_server: GitServer) -> str:
    git_server.create_repo("fleet")
    return git_server.ssh_url("fleet")


@pytest.fixture
def work(tmp_path: Path, git_server: GitServer, remote: str) -> WorkingCopy:
    return WorkingCopy(tmp_path / "work", remote, git_server.ssh_command())


@pytest.fixture
def credentials(git_server: GitServer) -> GitCredentials:
    """What the GitRepo's Secret holds for the test server: the client key and the server's known_hosts line."""
    return GitCredentials.from_secret(
        {"identity": git_server.client_key.read_bytes(), "known_hosts": git_server.known_hosts.read_bytes()}
    )


@pytest.fixture
def source(tmp_path: Path) -> GitSource:
    return GitSource(tmp_path / "cache", network_timeout=20, scratch_root=tmp_path / "scratch")
