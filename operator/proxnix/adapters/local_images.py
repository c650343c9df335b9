"""Disk images on the operator's side: find the file a ProxmoxVM's `image.source` names, hash it, read its format
and virtual size — before anything is sent to a node.

Sources are absolute paths (nix store paths included) or http(s) URLs; a URL is downloaded once into a local cache
folder, named by its sha256 after download. Hashes are cached per (path, size, mtime) so a resync never re-reads a
multi-GB image. A declared `sha256` that does not match is a permanent error: the image is not what the spec says.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from proxnix.adapters.hashing import file_sha256
from proxnix.proxmox.image_cache import image_format

CHUNK = 1 << 20
QCOW2_SIZE_OFFSET = 24


class LocalImageError(Exception):
    """The image cannot be used; `permanent` when retrying cannot help (wrong hash, not an image)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class LocalImage:
    """An image file ready to upload."""

    path: Path
    sha256: str
    format: str
    size_bytes: int
    virtual_size_bytes: int


def _virtual_size(path: Path, fmt: str, size: int) -> int:
    if fmt != "qcow2":
        return size
    with path.open("rb") as fh:
        header = fh.read(QCOW2_SIZE_OFFSET + 8)
    if len(header) < QCOW2_SIZE_OFFSET + 8:
        raise LocalImageError(f"{path}: truncated qcow2 header", permanent=True)
    (virtual,) = struct.unpack(">Q", header[QCOW2_SIZE_OFFSET : QCOW2_SIZE_OFFSET + 8])
    return int(virtual)


def redact(url: str) -> str:
    """A URL as it may appear in messages: without user:password."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, "***@" + netloc, parts.path, parts.query, parts.fragment))


class LocalImages:
    """Inspects (and for URLs, downloads) images; results cached by file identity."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "proxnix-images"
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._downloads: dict[str, Path] = {}
        self._lock = asyncio.Lock()

    async def resolve(self, source: str, expected_sha256: str | None) -> LocalImage:
        """The image a spec names, verified against `expected_sha256` when given."""
        if source.startswith(("http://", "https://")):
            path = await self._download(source, expected_sha256)
        else:
            path = Path(source)
        return await asyncio.to_thread(self._inspect, path, expected_sha256)

    def _inspect(self, path: Path, expected: str | None) -> LocalImage:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise LocalImageError(
                f"image {path} does not exist on the operator's machine", permanent=False
            ) from None
        except OSError as exc:
            raise LocalImageError(f"image {path}: {exc.strerror}", permanent=False) from None
        if not path.is_file():
            raise LocalImageError(f"image {path} is not a regular file", permanent=True)
        identity = (str(path), st.st_size, st.st_mtime_ns)
        sha = self._hashes.get(identity)
        if sha is None:
            sha = file_sha256(path).sha256
            self._hashes[identity] = sha
        if expected is not None and sha != expected:
            raise LocalImageError(
                f"image {path} has sha256 {sha}, but the spec expects {expected}", permanent=True
            )
        with path.open("rb") as fh:
            fmt = image_format(fh.read(8))
        return LocalImage(
            path=path,
            sha256=sha,
            format=fmt,
            size_bytes=st.st_size,
            virtual_size_bytes=_virtual_size(path, fmt, st.st_size),
        )

    async def _download(self, url: str, expected: str | None) -> Path:
        async with self._lock:
            done = self._downloads.get(url)
            if done is not None and done.exists():
                return done
            path = await asyncio.to_thread(self._download_blocking, url, expected)
            self._downloads[url] = path
            return path

    def _download_blocking(self, url: str, expected: str | None) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if expected is not None:
            final = self.cache_dir / expected
            if final.exists():
                return final
        fd, partial = tempfile.mkstemp(dir=self.cache_dir, prefix=".download-")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
                shutil.copyfileobj(response, out, CHUNK)
            sha = file_sha256(Path(partial)).sha256
            if expected is not None and sha != expected:
                raise LocalImageError(
                    f"{url} has sha256 {sha}, but the spec expects {expected}", permanent=True
                )
            final = self.cache_dir / sha
            os.replace(partial, final)
            return final
        except OSError as exc:
            raise LocalImageError(f"cannot download {redact(url)}: {exc}", permanent=False) from None
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
