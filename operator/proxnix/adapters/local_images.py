"""Disk images on the operator's side: find the file a ProxmoxVM's `image.source` names, hash it, read its format
and virtual size — before anything is sent to a node.

Sources are absolute paths or http(s) URLs.
- A path is served only when, after following every symbolic link and `..`, it lies under one of the operator's
  image roots (`proxnix operator --image-root DIR`, default the nix store): whoever may create a ProxmoxVM must not
  be able to make any other file of the operator's machine (a Secret, a key, /etc/shadow) a VM disk.
- A URL is downloaded once into the operator's private cache folder (`image_download`); `require_url_sha256`
  refuses URL sources without a `sha256`.
Hashes are cached per (path, size, mtime) so a resync never re-reads a multi-GB image. A declared `sha256` that does
not match, or a qcow2 with a backing or external data file, is a permanent error.
"""

from __future__ import annotations

import asyncio
import os
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from proxnix.adapters.hashing import file_sha256
from proxnix.adapters.image_download import DownloadLimits, Downloads
from proxnix.adapters.image_errors import LocalImageError, redact
from proxnix.proxmox.image_cache import QCOW2_HEADER_BYTES, image_format, qcow2_problem

__all__ = ["NIX_STORE", "LocalImage", "LocalImageError", "LocalImages"]

QCOW2_SIZE_OFFSET = 24
NIX_STORE = Path("/nix/store")
# How long a reconcile waits for a URL download before it reports "still downloading" and carries on.
DOWNLOAD_WAIT_S = 2.0


@dataclass(frozen=True)
class LocalImage:
    """An image file ready to upload."""

    path: Path
    sha256: str
    format: str
    size_bytes: int
    virtual_size_bytes: int


def _virtual_size(header: bytes, fmt: str, size: int, path: Path) -> int:
    if fmt != "qcow2":
        return size
    if len(header) < QCOW2_SIZE_OFFSET + 8:
        raise LocalImageError(f"{path}: truncated qcow2 header", permanent=True)
    (virtual,) = struct.unpack(">Q", header[QCOW2_SIZE_OFFSET : QCOW2_SIZE_OFFSET + 8])
    return int(virtual)


def served_path(source: str, roots: Sequence[Path]) -> Path:
    """The real path of `source` if it lies under one of `roots` (both resolved through links), else a permanent
    LocalImageError (reason ImageSourceForbidden)."""
    real = Path(os.path.realpath(source))
    for root in roots:
        real_root = Path(os.path.realpath(root))
        if real.is_relative_to(real_root) and real != real_root:
            return real
    allowed = ", ".join(str(r) for r in roots) or "none configured"
    raise LocalImageError(
        f"image {source} is not under an image root of the operator ({allowed}); local images are served only "
        "from there (proxnix operator --image-root)",
        permanent=True,
        reason="ImageSourceForbidden",
    )


class LocalImages:
    """Finds, checks and (for URLs, downloads) images; results cached by file identity."""

    def __init__(
        self,
        roots: Sequence[Path] = (NIX_STORE,),
        *,
        cache_dir: Path | None = None,
        limits: DownloadLimits | None = None,
        require_url_sha256: bool = False,
        download_wait_s: float = DOWNLOAD_WAIT_S,
    ) -> None:
        self.roots = tuple(roots)
        cache = cache_dir or Path(tempfile.gettempdir()) / f"proxnix-images-{os.getuid()}"
        self.downloads = Downloads(cache, limits)
        self.require_url_sha256 = require_url_sha256
        self.download_wait_s = download_wait_s
        self._hashes: dict[tuple[str, int, int], str] = {}

    def close(self) -> None:
        self.downloads.close()

    async def resolve(self, source: str, expected_sha256: str | None) -> LocalImage:
        """The image a spec names, verified against `expected_sha256` when given. A URL that is still downloading
        after `download_wait_s` raises a transient LocalImageError (reason ImageDownloading)."""
        if source.startswith(("http://", "https://")):
            if self.require_url_sha256 and expected_sha256 is None:
                raise LocalImageError(
                    f"image {redact(source)} has no sha256; this operator requires spec.image.sha256 for URLs",
                    permanent=True,
                    reason="ImageSha256Required",
                )
            path = await self.downloads.fetch(source, expected_sha256, wait_s=self.download_wait_s)
        else:
            path = served_path(source, self.roots)
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
            header = fh.read(QCOW2_HEADER_BYTES)
        problem = qcow2_problem(header)
        if problem is not None:
            raise LocalImageError(f"image {path}: {problem}", permanent=True)
        fmt = image_format(header)
        return LocalImage(
            path=path,
            sha256=sha,
            format=fmt,
            size_bytes=st.st_size,
            virtual_size_bytes=_virtual_size(header, fmt, st.st_size, path),
        )
