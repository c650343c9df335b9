"""URL normalisation: every spelling of a repository gives the same key; different repositories do not."""

from __future__ import annotations

import pytest

from proxnix.sources.webhooks.urls import repo_key, repo_keys

SAME_REPO = [
    "https://github.com/owner/repo.git",
    "https://github.com/owner/repo",
    "https://github.com/owner/repo/",
    "https://GitHub.COM/owner/repo.git",
    "http://github.com/owner/repo",
    "https://github.com:443/owner/repo.git",
    "https://user:token@github.com/owner/repo.git",
    "ssh://git@github.com/owner/repo.git",
    "ssh://git@github.com:22/owner/repo.git",
    "ssh://git@GITHUB.com/owner/repo",
    "git+ssh://git@github.com/owner/repo.git",
    "git@github.com:owner/repo.git",
    "git@github.com:owner/repo",
    "git@github.com:/owner/repo.git",
    "github.com:owner/repo.git",
    "git://github.com/owner/repo.git",
    "  https://github.com//owner//repo.git  ",
]


@pytest.mark.parametrize("url", SAME_REPO)
def test_spellings_of_one_repository_share_a_key(url: str) -> None:
    assert repo_key(url) == "github.com/owner/repo"


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("ssh://git@bitbucket.example.com:7999/PROJ/repo.git", "bitbucket.example.com:7999/PROJ/repo"),
        ("https://gitea.local:3000/a/b.git", "gitea.local:3000/a/b"),
        ("http://[::1]:8080/a/b", "[::1]:8080/a/b"),
        ("ssh://git@[2001:DB8::1]/a/b.git", "[2001:db8::1]/a/b"),
        ("https://gitlab.example.com/group/sub/project.git", "gitlab.example.com/group/sub/project"),
        ("file:///srv/git/fleet.git", "file:///srv/git/fleet"),
        ("https://host/a/b.GIT", "host/a/b"),
        ("https://host/a/b.git.git", "host/a/b.git"),
    ],
)
def test_keys(url: str, key: str) -> None:
    assert repo_key(url) == key


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://github.com/owner/repo", "https://github.com/Owner/repo"),  # path case is kept
        ("https://github.com/owner/repo", "https://github.com/owner/repo2"),
        ("https://host:8443/a/b", "https://host/a/b"),  # a non-default port may be another server
        ("ssh://git@host:2222/a/b", "ssh://git@host/a/b"),
        ("https://github.com/owner/repo", "https://gitlab.com/owner/repo"),
        ("file:///github.com/owner/repo", "https://github.com/owner/repo"),
    ],
)
def test_different_repositories_differ(one: str, other: str) -> None:
    assert repo_key(one) != repo_key(other)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "garbage",
        "https://host/",
        "https://host",
        "ftp://host/a/b",
        "https://ho st/a",
        "ssh://git@/a/b",
        "https://host:99999/a/b",
        "https://host/.git",
        "https://[::1/a",
        "x" * 5000,
        "git@host:",
    ],
)
def test_unparseable_urls_have_no_key(url: str) -> None:
    assert repo_key(url) is None


def test_repo_keys_skips_junk() -> None:
    assert repo_keys(["https://h/a/b", 3, None, "nope", "git@h:a/b.git"]) == frozenset({"h/a/b"})
    assert repo_keys("https://h/a/b") == frozenset()
