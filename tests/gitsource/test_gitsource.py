"""Git, pure: error classification from real git stderr (tests/fixtures/git), refspecs, the ssh command, secrets."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from proxnix.api.gitrepo import GitRef
from proxnix.sources.gitsource import (
    ASKPASS_SCRIPT,
    GitCredentials,
    GitErrorKind,
    classify,
    error_summary,
    refspec,
    ssh_command,
)

GIT_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "git"
CAPTURED = sorted(GIT_FIXTURES.glob("*.stderr"))


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_captured_git_errors_are_classified(path: Path) -> None:
    expected = GitErrorKind(path.name.split(".")[0])
    assert classify(path.read_text()) is expected


def test_every_kind_but_timeout_and_other_has_a_capture() -> None:
    kinds = {GitErrorKind(p.name.split(".")[0]) for p in CAPTURED}
    assert kinds == set(GitErrorKind) - {GitErrorKind.TIMEOUT, GitErrorKind.OTHER}


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ('Timeout: the command "git fetch origin" did not complete in 1.5 secs.', GitErrorKind.TIMEOUT),
        ("Connection timed out during banner exchange", GitErrorKind.TIMEOUT),
        ("fatal: unable to access 'https://h/r/': The requested URL returned error: 401", GitErrorKind.AUTH),
        ("fatal: could not read Username for 'https://h': terminal prompts disabled", GitErrorKind.AUTH),
        ("remote: Repository not found.\nfatal: repository 'https://h/r/' not found", GitErrorKind.NOT_FOUND),
        ("error: something else entirely", GitErrorKind.OTHER),
    ],
)
def test_other_known_messages(stderr: str, kind: GitErrorKind) -> None:
    assert classify(stderr) is kind


def test_error_summary_drops_the_boilerplate() -> None:
    text = (GIT_FIXTURES / "AuthenticationFailed.ssh-wrong-key.stderr").read_text()
    assert error_summary(text) == (
        "root@127.0.0.1: Permission denied (publickey). fatal: Could not read from remote repository."
    )


def test_refspecs() -> None:
    branch = refspec(GitRef(branch="main"))
    assert (branch.fetch, branch.local) == (("+refs/heads/main:refs/heads/main",), "refs/heads/main")
    tag = refspec(GitRef(tag="v1.2"))
    assert (tag.fetch, tag.local) == (("+refs/tags/v1.2:refs/tags/v1.2",), "refs/tags/v1.2")
    sha = "a" * 40
    commit = refspec(GitRef(commit=sha))
    assert (commit.fetch, commit.local, commit.description) == ((sha,), sha, "commit aaaaaaaaaaaa")


def test_ssh_command_checks_host_keys_and_quotes_paths() -> None:
    command = ssh_command("/tmp/x y/identity", "/tmp/x y/known_hosts", 7)
    argv = shlex.split(command)
    assert argv[:3] == ["ssh", "-F", "/dev/null"]
    assert "StrictHostKeyChecking=yes" in argv
    assert "BatchMode=yes" in argv
    assert "ConnectTimeout=7" in argv
    assert "UserKnownHostsFile=/tmp/x y/known_hosts" in argv
    assert argv[-2:] == ["-i", "/tmp/x y/identity"]
    assert "-i" not in shlex.split(ssh_command(None, None, 7))


def test_credentials_from_a_secret_never_show_the_secrets() -> None:
    creds = GitCredentials.from_secret(
        {"identity": b"-----BEGIN KEY-----", "username": b"bot\n", "password": b"tok3n-value\n"}
    )
    assert creds.username == "bot"
    assert creds.password == "tok3n-value"
    assert "tok3n-value" not in repr(creds)
    assert "BEGIN KEY" not in repr(creds)
    assert "tok3n" not in ASKPASS_SCRIPT
