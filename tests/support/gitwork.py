"""A user's working copy for tests: write files, commit, tag and push to a test git server with real git."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "user@proxnix.invalid",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "user@proxnix.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class WorkingCopy:
    """A non-bare repository whose `origin` is `remote`; `ssh_command` is used for ssh remotes."""

    def __init__(self, path: Path, remote: str, ssh_command: str | None = None, branch: str = "main") -> None:
        self.path = path
        self.env = {**os.environ, **IDENTITY, "GIT_CONFIG_GLOBAL": "/dev/null"}
        if ssh_command:
            self.env["GIT_SSH_COMMAND"] = ssh_command
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", f"--initial-branch={branch}")
        self.git("config", "protocol.file.allow", "always")
        self.git("remote", "add", "origin", remote)

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def write(self, files: Mapping[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, message: str, files: Mapping[str, str] | None = None) -> str:
        """Commit everything (after writing `files`); returns the new commit id."""
        if files:
            self.write(files)
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def push(self, *refs: str) -> str:
        """Push (default: the current branch); returns git's stderr (the hook's `remote:` lines are in it)."""
        done = subprocess.run(
            ["git", "push", "--quiet", "origin", *(refs or ("HEAD",))],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"git push failed: {done.stderr}")
        return done.stderr
