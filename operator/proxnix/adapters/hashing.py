"""The one sha256 of a local file: its digest, size and first bytes (the format sniff), read once in chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 4 * 1024 * 1024
HEADER_BYTES = 16


@dataclass(frozen=True)
class FileDigest:
    """A file's sha256 (hex), its size in bytes and its first `HEADER_BYTES` bytes."""

    sha256: str
    size: int
    header: bytes


def file_sha256(path: Path) -> FileDigest:
    """Hash `path` (blocking: call it in a worker thread). OSError when it cannot be read."""
    digest = hashlib.sha256()
    size = 0
    header = b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if not header:
                header = chunk[:HEADER_BYTES]
            digest.update(chunk)
            size += len(chunk)
    return FileDigest(digest.hexdigest(), size, header)
