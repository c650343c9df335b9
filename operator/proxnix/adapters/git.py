"""Git (the only module that imports gitpython): a bare cache per GitRepo that survives reconciles and restarts and
fetches incrementally, the resolution of a branch, tag (annotated too) or fixed commit, and a checkout of the exact
commit into a private temporary folder for evaluation.

Credentials never reach a URL, an argv, a log or a message: an SSH key and known_hosts are written 0600 into a
private (0700) temporary folder for the one command and removed afterwards, with StrictHostKeyChecking=yes; an https
username and token reach git through an askpass helper reading them from the git process's environment. Every
network step has a timeout. Failures raise GitError with a kind (auth, host key, not found, network, timeout).
gitpython blocks, so every public method runs it in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import git

from proxnix.api.gitrepo import GIT_URL_PATTERN, GitRef
from proxnix.sources.gitsource import (
    ALL_REFS,
    ASKPASS_SCRIPT,
    ENV_ORIGIN,
    ENV_PASSWORD,
    ENV_USERNAME,
    GitCredentials,
    GitErrorKind,
    classify,
    credential_origin,
    error_summary,
    refspec,
    ssh_command,
)

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class GitError(Exception):
    """A git step failed; `kind` says why (the FetchFailed condition's reason), the message says what."""

    def __init__(self, kind: GitErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Fetched:
    """The commit a GitRef resolved to after a fetch."""

    revision: str
    message: str
    """The commit's subject line."""


@dataclass(frozen=True)
class RepoKey:
    """Which GitRepo a cache belongs to."""

    namespace: str
    name: str

    def __post_init__(self) -> None:
        for part in (self.namespace, self.name):
            if not _NAME.fullmatch(part):
                raise ValueError(f"{part!r} is not a Kubernetes name")

    def folder(self) -> str:
        return f"{self.namespace}/{self.name}.git"


class GitSource:
    """Fetches repositories into per-GitRepo bare caches under `cache_root` and checks out commits (into
    `scratch_root`, which belongs to this process: what a killed predecessor left there is removed at start)."""

    def __init__(
        self,
        cache_root: Path,
        *,
        network_timeout: float = 120.0,
        local_timeout: float = 300.0,
        scratch_root: Path | None = None,
    ) -> None:
        self.cache_root = cache_root
        self.network_timeout = network_timeout
        self.local_timeout = local_timeout
        self.scratch_root = scratch_root
        if scratch_root is not None and scratch_root.is_dir():
            for leftover in scratch_root.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)

    def cache_path(self, key: RepoKey) -> Path:
        return self.cache_root / key.folder()

    async def fetch(
        self, key: RepoKey, url: str, ref: GitRef, credentials: GitCredentials | None = None
    ) -> Fetched:
        """Fetch what `ref` needs into the cache (incrementally) and resolve it to a commit."""
        return await asyncio.to_thread(self._fetch, key, url, ref, credentials)

    @contextlib.asynccontextmanager
    async def checkout(
        self,
        key: RepoKey,
        revision: str,
        *,
        url: str,
        credentials: GitCredentials | None = None,
        submodules: bool = False,
    ) -> AsyncIterator[Path]:
        """The exact commit's files in a private temporary folder (no .git), removed on exit."""
        folder = await asyncio.to_thread(self._checkout, key, revision, url, credentials, submodules)
        try:
            yield folder
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    def forget(self, key: RepoKey) -> None:
        """Remove a GitRepo's cache (when the GitRepo is deleted)."""
        shutil.rmtree(self.cache_path(key), ignore_errors=True)

    # --- blocking parts ---------------------------------------------------------------------------

    def _repo(self, key: RepoKey, url: str) -> git.Repo:
        """The GitRepo's cache; a cache of another URL (the GitRepo now points elsewhere) is started afresh."""
        path = self.cache_path(key)
        if (path / "HEAD").exists():
            repo = git.Repo(path)
            if repo.config_reader().get_value('remote "origin"', "url", "") != url:
                repo.close()
                shutil.rmtree(path)
        if (path / "HEAD").exists():
            repo = git.Repo(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{key.name}-"))
            git.Repo.init(partial, bare=True)
            os.replace(partial, path)
            repo = git.Repo(path)
        with repo.config_writer() as config:
            config.set_value('remote "origin"', "url", url)
            config.set_value("gc", "autoDetach", "false")
        return repo

    def _run(
        self, repo: git.Repo, *args: str, env: dict[str, str], timeout: float, what: str, url: str = ""
    ) -> str:
        # file:// (and local paths, e.g. in .gitmodules) only when the GitRepo itself is a file:// repository.
        local = "always" if url.startswith("file://") else "never"
        options = [
            "-c",
            "credential.helper=",
            "-c",
            f"protocol.file.allow={local}",
            "-c",
            "protocol.ext.allow=never",
        ]
        try:
            out: str = repo.git.execute(
                ["git", *options, *args],
                env=env,
                kill_after_timeout=timeout,
            )
        except git.GitCommandError as exc:
            stderr = str(exc.stderr or "")
            kind = classify(stderr)
            raise GitError(
                kind, f"{what}: {error_summary(stderr) or f'git exited with {exc.status}'}"
            ) from None
        return out

    def _has_commit(self, repo: git.Repo, revision: str) -> bool:
        try:
            repo.git.cat_file("-e", f"{revision}^{{commit}}")
        except git.GitCommandError:
            return False
        return True

    def _resolve(self, repo: git.Repo, local: str, description: str) -> Fetched:
        try:
            revision = repo.git.rev_parse("--verify", "--quiet", f"{local}^{{commit}}")
        except git.GitCommandError:
            raise GitError(GitErrorKind.NOT_FOUND, f"{description} is not in the repository") from None
        message = repo.git.log("-1", "--format=%s", revision)
        return Fetched(revision=revision, message=message)

    def _fetch(self, key: RepoKey, url: str, ref: GitRef, credentials: GitCredentials | None) -> Fetched:
        if not re.fullmatch(GIT_URL_PATTERN, url):
            raise GitError(
                GitErrorKind.OTHER, "the repository URL is not one proxnix accepts (see GitRepo spec.url)"
            )
        with contextlib.closing(self._repo(key, url)) as repo:
            return self._fetch_into(repo, url, ref, credentials)

    def _fetch_into(
        self, repo: git.Repo, url: str, ref: GitRef, credentials: GitCredentials | None
    ) -> Fetched:
        spec = refspec(ref)
        if ref.commit is not None and self._has_commit(repo, ref.commit):
            return self._resolve(repo, ref.commit, spec.description)
        with _auth_env(credentials, url, self.network_timeout) as env:
            fetch = ("fetch", "--no-tags", "--no-write-fetch-head", "origin")
            try:
                self._run(
                    repo,
                    *fetch,
                    *spec.fetch,
                    env=env,
                    timeout=self.network_timeout,
                    what=f"fetch {spec.description}",
                    url=url,
                )
            except GitError as exc:
                if ref.commit is None or exc.kind is not GitErrorKind.NOT_FOUND:
                    raise
                # A server that refuses unadvertised commits: fetch every branch and tag, then look again.
                self._run(
                    repo,
                    *fetch,
                    *ALL_REFS,
                    env=env,
                    timeout=self.network_timeout,
                    what="fetch all refs",
                    url=url,
                )
        return self._resolve(repo, spec.local, spec.description)

    def _checkout(
        self, key: RepoKey, revision: str, url: str, credentials: GitCredentials | None, submodules: bool
    ) -> Path:
        cache = self.cache_path(key)
        if self.scratch_root is not None:
            self.scratch_root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{key.namespace}.{key.name}-", dir=self.scratch_root))
        try:
            with git.Repo.clone_from(str(cache), folder, shared=True, no_checkout=True) as work:
                self._check_out(work, revision, url, credentials, submodules)
            _remove_git_dirs(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder

    def _check_out(
        self, work: git.Repo, revision: str, url: str, credentials: GitCredentials | None, submodules: bool
    ) -> None:
        env = {"GIT_TERMINAL_PROMPT": "0"}
        what = f"checkout {revision[:12]}"
        self._run(
            work, "checkout", "--quiet", "--detach", revision, env=env, timeout=self.local_timeout, what=what
        )
        if not submodules:
            return
        with work.config_writer() as config:
            config.set_value('remote "origin"', "url", url)
        with _auth_env(credentials, url, self.network_timeout) as auth:
            self._run(
                work,
                "submodule",
                "update",
                "--init",
                "--recursive",
                env=auth,
                timeout=self.network_timeout,
                what="fetch submodules",
                url=url,
            )


def _remove_git_dirs(folder: Path) -> None:
    """Drop .git (folders of the clone, files of submodules): nix evaluates exactly the commit's files."""
    for path in sorted(folder.rglob(".git"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def _auth_env(credentials: GitCredentials | None, url: str, timeout: float) -> Iterator[dict[str, str]]:
    """The environment of one network git command, with credential files in a private folder removed afterwards.
    A username/token is given only to prompts for `url`'s origin (submodules on other hosts get none)."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false"}
    private = Path(tempfile.mkdtemp(prefix="proxnix-git-"))  # 0700
    try:
        identity = known_hosts = None
        if credentials is not None and credentials.identity is not None:
            identity = _write_private(private / "identity", _with_newline(credentials.identity))
        if credentials is not None and credentials.known_hosts is not None:
            known_hosts = _write_private(private / "known_hosts", _with_newline(credentials.known_hosts))
        connect_timeout = max(1, min(int(timeout), 30))
        env["GIT_SSH_COMMAND"] = ssh_command(identity, known_hosts, connect_timeout)
        env["GIT_SSH_VARIANT"] = "ssh"
        if credentials is not None and credentials.password is not None:
            askpass = private / "askpass"
            askpass.write_text(ASKPASS_SCRIPT)
            askpass.chmod(0o700)
            env["GIT_ASKPASS"] = str(askpass)
            env[ENV_USERNAME] = credentials.username or ""
            env[ENV_PASSWORD] = credentials.password
            env[ENV_ORIGIN] = credential_origin(url)
        env["GIT_HTTP_LOW_SPEED_LIMIT"] = "1000"
        env["GIT_HTTP_LOW_SPEED_TIME"] = str(connect_timeout)
        yield env
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _with_newline(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


def _write_private(path: Path, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return str(path)
