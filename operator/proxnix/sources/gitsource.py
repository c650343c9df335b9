"""Git, pure: which refspecs a GitRef fetches and which local ref it resolves to, the ssh command and askpass helper
that carry credentials without putting them in a URL or an argv, the credentials a Secret holds, and what a failed
git command's stderr means (auth, not found, network, timeout) for the FetchFailed condition.

`proxnix.adapters.git` runs git; nothing here does I/O.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from proxnix.api.gitrepo import GitRef

ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-f]{40}$")

# Env variables the askpass helper reads (set only in the git process's environment).
ENV_USERNAME = "PROXNIX_GIT_USERNAME"
ENV_PASSWORD = "PROXNIX_GIT_PASSWORD"  # noqa: S105 (a variable name)
ENV_ORIGIN = "PROXNIX_GIT_ORIGIN"
# git prompts "Username for 'https://host[:port]': " and "Password for 'https://user@host[:port]': ". The helper
# answers only prompts for the origin's scheme://host[:port]; any other host (a submodule elsewhere, a redirect)
# gets no answer, so git fetches it without credentials (or fails to authenticate there).
ASKPASS_SCRIPT = f"""#!/bin/sh
# proxnix: git's askpass helper; answers from the environment, never from argv or a file, for the origin only.
url=${{1#*\\'}}
url=${{url%\\'*}}
rest=${{url#*://}}
rest=${{rest%%/*}}
[ "${{url%%://*}}://${{rest##*@}}" = "${ENV_ORIGIN}" ] || exit 1
case "$1" in
  Username*) printf '%s\\n' "${ENV_USERNAME}" ;;
  Password*) printf '%s\\n' "${ENV_PASSWORD}" ;;
  *) exit 1 ;;
esac
"""


def credential_origin(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL as git names it in its prompts (no user, no path): the only place
    the askpass helper gives the credentials to."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}"


class GitErrorKind(StrEnum):
    """What went wrong, as the FetchFailed condition's reason."""

    AUTH = "AuthenticationFailed"
    HOST_KEY = "HostKeyVerificationFailed"
    NOT_FOUND = "NotFound"
    NETWORK = "NetworkError"
    TIMEOUT = "Timeout"
    OTHER = "GitError"


# First match wins; patterns are matched against git's (and ssh's) stderr in the C locale.
_CLASSES: tuple[tuple[GitErrorKind, re.Pattern[str]], ...] = (
    (GitErrorKind.TIMEOUT, re.compile(r"did not complete in [0-9.]+ secs|timed out", re.I)),
    (
        GitErrorKind.HOST_KEY,
        re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED"),
    ),
    (
        GitErrorKind.AUTH,
        re.compile(
            r"Permission denied \(|Authentication failed|could not read (Username|Password)|"
            r"terminal prompts disabled|HTTP Basic: Access denied|The requested URL returned error: 40[13]|"
            r"invalid credentials"
        ),
    ),
    (
        GitErrorKind.NOT_FOUND,
        re.compile(
            r"[Rr]epository not found|does not appear to be a git repository|couldn't find remote ref|"
            r"not our ref|The requested URL returned error: 404|No such file or directory|"
            r"unknown revision|bad object|not a valid object name"
        ),
    ),
    (
        GitErrorKind.NETWORK,
        re.compile(
            r"Could not resolve host|Connection refused|Network is unreachable|No route to host|"
            r"Connection reset|Connection closed|unable to access|Could not read from remote repository|"
            r"early EOF|the remote end hung up"
        ),
    ),
)


def classify(stderr: str) -> GitErrorKind:
    """The kind of a failed git command's error, from its stderr."""
    return next((kind for kind, pattern in _CLASSES if pattern.search(stderr)), GitErrorKind.OTHER)


_NOISE = (
    "hint:",
    "remote: Counting",
    "remote: Compressing",
    "Please make sure you have the correct access rights",
    "and the repository exists.",
)


def error_summary(stderr: str, max_chars: int = 500) -> str:
    """The useful lines of git's stderr for a condition message (progress and hints dropped)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith(_NOISE)]
    return " ".join(lines)[-max_chars:]


@dataclass(frozen=True)
class RefSpec:
    """What to fetch for a GitRef and the local ref that then names the commit."""

    fetch: tuple[str, ...]
    local: str
    description: str


def refspec(ref: GitRef) -> RefSpec:
    """The refspecs (forced: a moved tag or a force-pushed branch is followed) and the local ref to resolve."""
    if ref.branch is not None:
        local = f"refs/heads/{ref.branch}"
        return RefSpec((f"+{local}:{local}",), local, f"branch {ref.branch}")
    if ref.tag is not None:
        local = f"refs/tags/{ref.tag}"
        return RefSpec((f"+{local}:{local}",), local, f"tag {ref.tag}")
    assert ref.commit is not None
    return RefSpec((ref.commit,), ref.commit, f"commit {ref.commit[:12]}")


# Fetched when a fixed commit cannot be fetched by its id (a server refusing unadvertised wants).
ALL_REFS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


def is_commit_sha(value: str) -> bool:
    return _SHA.fullmatch(value) is not None


def ssh_command(identity: str | None, known_hosts: str | None, connect_timeout: int) -> str:
    """GIT_SSH_COMMAND: the host key is always checked; with a key, only that key is offered (paths quoted)."""
    parts = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"ConnectTimeout={int(connect_timeout)}",
    ]
    if known_hosts is not None:
        parts += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if identity is not None:
        parts += ["-o", "IdentitiesOnly=yes", "-i", identity]
    return shlex.join(parts)


@dataclass(frozen=True)
class GitCredentials:
    """What a GitRepo's Secret holds: an SSH key and known_hosts, or a username and password/token (https)."""

    identity: bytes | None = field(default=None, repr=False)
    known_hosts: bytes | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret(cls, data: Mapping[str, bytes]) -> GitCredentials:
        """From a Secret's decoded data (keys `identity`, `known_hosts`, `username`, `password`)."""
        username = data.get("username")
        password = data.get("password")
        return cls(
            identity=data.get("identity"),
            known_hosts=data.get("known_hosts"),
            username=username.decode().strip() if username is not None else None,
            password=password.decode().strip() if password is not None else None,
        )
