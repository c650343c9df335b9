"""Git repository URL normalisation: every spelling of one repository maps to one canonical key.

A push names its repository in several forms (https clone URL, `ssh://`, scp-like `git@host:owner/repo.git`, a web
URL) and a GitRepo's `spec.url` may use any of them. `repo_key` reduces each to `host[:port]/path`:

- the scheme and any user (or `user:password`) are dropped, so https, http, ssh and git URLs of one repo meet;
- the host is lowercased (hosts are case-insensitive); an IPv6 host keeps its brackets;
- a port is kept only if it is not the scheme's default (22 ssh, 443 https, 80 http, 9418 git), since another port
  may be another server (Bitbucket Server's ssh on 7999);
- the path keeps its case (many servers treat `Owner/Repo` and `owner/repo` alike, but not all do), loses leading and
  trailing slashes, repeated slashes, and a trailing `.git`.

`file://` URLs keep their scheme (`file:///srv/repo`) so they never meet a network URL. Anything unparseable gives None.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_PORTS: dict[str, int] = {
    "ssh": 22,
    "git+ssh": 22,
    "ssh+git": 22,
    "https": 443,
    "http": 80,
    "git": 9418,
}

# scp-like syntax: [user@]host:path, where host has no '/' and path does not start with '//' (that would be a URL).
_SCP_LIKE = re.compile(
    r"^(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<path>(?!//)\S+)$"
)
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)$")
_MAX_URL = 4096


def _clean_path(path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    last = parts[-1]
    if last.lower().endswith(".git"):
        last = last[: -len(".git")]
        if not last:
            return None
        parts[-1] = last
    return "/".join(parts)


def _key(host: str, port: int | None, scheme: str, path: str) -> str | None:
    host = host.lower()
    if not _HOST.match(host) or host.strip(".") == "":
        return None
    clean = _clean_path(path)
    if clean is None:
        return None
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    return f"{netloc}/{clean}"


def repo_key(url: str) -> str | None:
    """The canonical key of a repository URL, or None if `url` is not a recognisable git URL."""
    url = url.strip()
    if not url or len(url) > _MAX_URL or any(c.isspace() for c in url):
        return None
    if "://" in url:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme == "file":
            clean = _clean_path(parts.path)
            return None if clean is None or parts.netloc not in ("", "localhost") else f"file:///{clean}"
        if scheme not in DEFAULT_PORTS:
            return None
        hostname = parts.hostname
        if not hostname:
            return None
        if ":" in hostname:
            hostname = f"[{hostname}]"
        return _key(hostname, port, scheme, parts.path)
    match = _SCP_LIKE.match(url)
    if match is None:
        return None
    host = match["host"]
    return _key(host, None, "ssh", match["path"])


def repo_keys(urls: object) -> frozenset[str]:
    """The keys of every recognisable URL among `urls` (non-strings and unparseable values are skipped)."""
    if not isinstance(urls, list | tuple | set | frozenset):
        return frozenset()
    keys = (repo_key(u) for u in urls if isinstance(u, str))
    return frozenset(k for k in keys if k is not None)
