"""The error of the operator-side image steps (find, download, inspect) and the URL redaction their messages use."""

from __future__ import annotations

import urllib.parse


class LocalImageError(Exception):
    """The image cannot be used; `permanent` when retrying cannot help (wrong hash, not an image, a forbidden path).
    `reason` is the CamelCase condition reason to report."""

    def __init__(self, message: str, *, permanent: bool, reason: str = "ImageUnavailable") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.reason = reason


def redact(url: str) -> str:
    """A URL as it may appear in messages: without user:password."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, "***@" + netloc, parts.path, parts.query, parts.fragment))
