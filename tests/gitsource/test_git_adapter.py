"""The git adapter against a real git server over SSH (and file://): fetch, resolve, checkout, errors, credentials."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxnix.adapters.git import GitError, GitSource, _auth_env
from proxnix.api.gitrepo import GitRef
from proxnix.sources.gitsource import GitCredentials, GitErrorKind
from proxnix_testbed.gitserver import GitServer
from pvesim.sshd import keygen
from tests.gitsource.conftest import KEY
from tests.support.gitwork import WorkingCopy


def _private_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("proxnix-git-*")}


async def test_fetch_a_branch_over_ssh_and_check_it_out(
    work: WorkingCopy,
    remote: str,
    source: GitSource,
    credentials: GitCredentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    private_tmp = (
        tmp_path / "tmp"
    )  # this test's own temp folder: another process's fetch cannot look like a leak
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    first = work.commit("first fleet", {"flake.nix": "{ }\n", "vms.nix": "{ }\n"})
    work.push()
    before = _private_dirs()
    fetched = await source.fetch(KEY, remote, GitRef(branch="main"), credentials)
    assert (fetched.revision, fetched.message) == (first, "first fleet")
    assert _private_dirs() == before, "the key and known_hosts folder must be removed after the fetch"
    second = work.commit("memory of web01", {"vms.nix": "{ web01 = { }; }\n", "sub/x.nix": "1\n"})
    work.push()
    async with source.checkout(KEY, first, url=remote) as folder:
        assert sorted(p.name for p in folder.iterdir()) == ["flake.nix", "vms.nix"]
        assert (folder / "vms.nix").read_text() == "{ }\n"
        assert str(folder).startswith(str(tmp_path / "scratch"))
        checked_out = folder
    assert not checked_out.exists()
    fetched = await source.fetch(KEY, remote, GitRef(branch="main"), credentials)
    assert fetched.revision == second
    async with source.checkout(KEY, second, url=remote) as folder:
        assert (folder / "sub" / "x.nix").read_text() == "1\n"
        assert not (folder / ".git").exists()


async def test_the_cache_survives_a_restart_and_fetches_incrementally(
    work: WorkingCopy, remote: str, source: GitSource, credentials: GitCredentials, tmp_path: Path
) -> None:
    work.commit("big history", {f"f{i}.txt": os.urandom(20_000).hex() for i in range(50)})
    work.push()
    await source.fetch(KEY, remote, GitRef(branch="main"), credentials)
    objects = source.cache_path(KEY) / "objects"
    packs = {p.name for p in (objects / "pack").glob("*.pack")}
    loose = set(objects.glob("??/*"))
    head = work.commit("one more", {"f0.txt": "changed\n"})
    work.push()
    restarted = GitSource(source.cache_root, network_timeout=20)
    fetched = await restarted.fetch(KEY, remote, GitRef(branch="main"), credentials)
    assert fetched.revision == head
    new_objects = set(objects.glob("??/*")) - loose
    new_packs = {p.name for p in (objects / "pack").glob("*.pack")} - packs
    sizes = [p.stat().st_size for p in new_objects] + [
        (objects / "pack" / n).stat().st_size for n in new_packs
    ]
    assert new_objects or new_packs
    assert loose <= set(objects.glob("??/*")), "the cache kept what it had"
    assert sum(sizes) < 20_000, (
        f"an incremental fetch should move only the new commit, moved {sum(sizes)} bytes"
    )


async def test_tags_annotated_and_lightweight_and_a_fixed_commit(
    work: WorkingCopy, remote: str, source: GitSource, credentials: GitCredentials, git_server: GitServer
) -> None:
    old = work.commit("v1")
    work.git("tag", "-a", "v1", "-m", "release 1")
    work.git("tag", "light")
    new = work.commit("v2")
    work.push("HEAD", "v1", "light")
    assert (await source.fetch(KEY, remote, GitRef(tag="v1"), credentials)).revision == old
    assert (await source.fetch(KEY, remote, GitRef(tag="light"), credentials)).revision == old
    assert (await source.fetch(KEY, remote, GitRef(commit=new), credentials)).revision == new
    git_server.stop()
    again = await source.fetch(KEY, remote, GitRef(commit=old), credentials)
    assert again.revision == old, "a commit already in the cache needs no network"


async def test_a_moved_tag_is_followed(
    work: WorkingCopy, remote: str, source: GitSource, credentials: GitCredentials
) -> None:
    work.commit("one")
    work.git("tag", "stable")
    work.push("HEAD", "stable")
    await source.fetch(KEY, remote, GitRef(tag="stable"), credentials)
    moved = work.commit("two")
    work.git("tag", "-f", "stable")
    work.push("HEAD", "+stable")
    assert (await source.fetch(KEY, remote, GitRef(tag="stable"), credentials)).revision == moved


async def test_file_urls(work: WorkingCopy, git_server: GitServer, source: GitSource) -> None:
    head = work.commit("local")
    work.push()
    fetched = await source.fetch(KEY, git_server.file_url("fleet"), GitRef(branch="main"))
    assert fetched.revision == head


async def test_submodules_only_when_asked(
    tmp_path: Path, git_server: GitServer, work: WorkingCopy, remote: str, source: GitSource
) -> None:
    git_server.create_repo("images")
    images = WorkingCopy(tmp_path / "images", git_server.file_url("images"))
    images.commit("images", {"image.nix": "{ }\n"})
    images.push()
    work.git(
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "--quiet",
        git_server.file_url("images"),
        "images",
    )
    head = work.commit("with a submodule")
    work.push()
    fetched = await source.fetch(KEY, git_server.file_url("fleet"), GitRef(branch="main"))
    assert fetched.revision == head
    async with source.checkout(KEY, head, url=git_server.file_url("fleet")) as folder:
        assert list((folder / "images").iterdir()) == []
    async with source.checkout(KEY, head, url=git_server.file_url("fleet"), submodules=True) as folder:
        assert (folder / "images" / "image.nix").read_text() == "{ }\n"
        assert not (folder / "images" / ".git").exists()
    with pytest.raises(GitError, match="transport 'file' not allowed"):
        async with source.checkout(KEY, head, url=remote, submodules=True):
            pass  # a repository fetched over ssh may not pull local files in through .gitmodules


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says anything (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def test_errors_are_classified(
    work: WorkingCopy,
    remote: str,
    git_server: GitServer,
    source: GitSource,
    credentials: GitCredentials,
    tmp_path: Path,
    silent_port: int,
) -> None:
    work.commit("x")
    work.push()
    other_key = tmp_path / "other_key"
    keygen(other_key, "someone-else")
    wrong_key = GitCredentials(identity=other_key.read_bytes(), known_hosts=credentials.known_hosts)
    wrong_host = GitCredentials(
        identity=credentials.identity,
        known_hosts=credentials.known_hosts.replace(b"[127.0.0.1]", b"[127.0.0.2]")
        if credentials.known_hosts
        else None,
    )
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    cases = [
        (remote, GitRef(branch="main"), wrong_key, GitErrorKind.AUTH),
        (remote, GitRef(branch="main"), wrong_host, GitErrorKind.HOST_KEY),
        (remote, GitRef(branch="nope"), credentials, GitErrorKind.NOT_FOUND),
        (git_server.ssh_url("missing"), GitRef(branch="main"), credentials, GitErrorKind.NOT_FOUND),
        (
            remote.replace(f":{git_server.port}/", f":{closed_port}/"),
            GitRef(branch="main"),
            credentials,
            GitErrorKind.NETWORK,
        ),
        (f"file://{tmp_path}/nothing-here", GitRef(branch="main"), None, GitErrorKind.NOT_FOUND),
    ]
    for url, ref, creds, kind in cases:
        with pytest.raises(GitError) as caught:
            await source.fetch(KEY, url, ref, creds)
        assert caught.value.kind is kind, (url, ref, caught.value.message)
    hung = GitSource(tmp_path / "cache2", network_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(GitError) as caught:
        await hung.fetch(
            KEY,
            remote.replace(f":{git_server.port}/", f":{silent_port}/"),
            GitRef(branch="main"),
            credentials,
        )
    assert caught.value.kind is GitErrorKind.TIMEOUT, caught.value.message
    assert time.monotonic() - started < 10


def test_credential_files_are_private_and_removed() -> None:
    creds = GitCredentials(identity=b"KEY", known_hosts=b"HOSTS", username="u", password="s3cret-token")
    with _auth_env(creds, "https://git.example:8443/fleet.git", 10) as env:
        folder = Path(env["GIT_ASKPASS"]).parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "identity").stat().st_mode) == 0o600
        assert stat.S_IMODE((folder / "known_hosts").stat().st_mode) == 0o600
        assert (folder / "identity").read_bytes() == b"KEY\n"
        assert "StrictHostKeyChecking=yes" in env["GIT_SSH_COMMAND"]
        assert "s3cret-token" not in env["GIT_SSH_COMMAND"]
        assert "s3cret-token" not in (folder / "askpass").read_text()
    assert not folder.exists()


def askpass(env: dict[str, str], prompt: str) -> subprocess.CompletedProcess[str]:
    """Run the askpass helper as git does: the prompt as its one argument, the git process's environment."""
    return subprocess.run(
        [env["GIT_ASKPASS"], prompt], env=env, capture_output=True, text=True, timeout=10, check=False
    )


def test_askpass_answers_only_the_origins_host() -> None:
    creds = GitCredentials(username="bot", password="s3cret-token")
    with _auth_env(creds, "https://git.example:8443/org/fleet.git", 10) as env:
        assert askpass(env, "Username for 'https://git.example:8443': ").stdout == "bot\n"
        assert askpass(env, "Password for 'https://bot@git.example:8443': ").stdout == "s3cret-token\n"
        for elsewhere in (
            "Password for 'https://bot@modules.example': ",  # a submodule on another host
            "Password for 'https://bot@git.example': ",  # same name, another port
            "Password for 'http://bot@git.example:8443': ",  # downgraded scheme
            "Password for 'https://bot@git.example:8443.evil.example': ",
            "Username for 'https://evil.example/git.example:8443': ",
        ):
            answer = askpass(env, elsewhere)
            assert answer.returncode != 0, elsewhere
            assert "s3cret-token" not in answer.stdout
            assert "bot" not in answer.stdout


async def test_a_cache_of_another_url_is_started_afresh(
    tmp_path: Path, work: WorkingCopy, git_server: GitServer, source: GitSource
) -> None:
    old = work.commit("in the old repository")
    work.push()
    await source.fetch(KEY, git_server.file_url("fleet"), GitRef(branch="main"))
    git_server.create_repo("elsewhere")
    other = WorkingCopy(tmp_path / "other", git_server.file_url("elsewhere"))
    new = other.commit("in the new repository")
    other.push()
    fetched = await source.fetch(KEY, git_server.file_url("elsewhere"), GitRef(branch="main"))
    assert fetched.revision == new
    with pytest.raises(GitError) as caught:
        await source.fetch(KEY, git_server.file_url("elsewhere"), GitRef(commit=old))
    assert caught.value.kind is GitErrorKind.NOT_FOUND, (
        "a commit of the old repository is not taken from the cache"
    )


def test_checkouts_left_by_a_killed_operator_are_removed_at_start(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    leftover = scratch / "default.fleet-abc123"
    (leftover / "sub").mkdir(parents=True)
    (leftover / "sub" / "vms.nix").write_text("{ }\n")
    GitSource(tmp_path / "cache", scratch_root=scratch)
    assert scratch.is_dir()
    assert list(scratch.iterdir()) == []
