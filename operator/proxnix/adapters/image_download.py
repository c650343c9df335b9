"""Image downloads (http/https) into the operator's local image cache.

What it owns:
- single flight per (URL, expected sha256): concurrent callers share one download; there is no global lock, and a
  finished download is looked up without waiting on anything;
- bounded time: a connect deadline, a per-read deadline (a server that stops sending) and a total deadline (a server
  that trickles); a caller waits at most `wait_s` and is told "still downloading" (the download goes on);
- a download is restarted from the beginning after any failure (no resume): each attempt writes a fresh private
  partial file that is removed on every failure;
- checks before publishing: status 200, the announced Content-Length received exactly, the expected sha256 (when
  given), and `qemu-img` (info, and `check` for qcow2; no backing or external data file). Only then is the file
  renamed to `<cache>/<sha256>` (mode 0600). A failed, short or corrupt download leaves nothing in the cache.
- failures are remembered for `retry_after_s`, so a broken URL is not fetched again by every reconcile.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import logging
import os
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from proxnix.adapters.image_errors import LocalImageError, redact
from proxnix.proxmox.image_cache import image_format, qcow2_problem

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_REDIRECTS = 5
# qemu-img check exit codes: 0 clean, 3 leaked clusters only (harmless); 1 could not check, 2 corrupted.
QEMU_CHECK_OK = (0, 3)


@dataclass(frozen=True)
class DownloadLimits:
    """Deadlines (seconds) and size bound of one download."""

    connect_timeout_s: float = 15.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 3600.0
    max_bytes: int = 256 * 1024**3
    retry_after_s: float = 20.0


class _Stop(Exception):
    pass


def _connect(url: str, limits: DownloadLimits) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LocalImageError(f"{redact(url)}: only http and https URLs are downloaded", permanent=True)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=limits.connect_timeout_s, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=limits.connect_timeout_s)
    conn.connect()
    if conn.sock is not None:
        conn.sock.settimeout(limits.read_timeout_s)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return conn, target


def _open(url: str, limits: DownloadLimits) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """GET `url`, following up to MAX_REDIRECTS http(s) redirects; the response of the final 200."""
    for _ in range(MAX_REDIRECTS + 1):
        conn, target = _connect(url, limits)
        conn.request("GET", target, headers={"User-Agent": "proxnix", "Accept-Encoding": "identity"})
        response = conn.getresponse()
        if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
            location = urllib.parse.urljoin(url, response.getheader("Location") or "")
            conn.close()
            url = location
            continue
        if response.status != 200:
            conn.close()
            raise LocalImageError(
                f"{redact(url)} answered HTTP {response.status} {response.reason}",
                permanent=400 <= response.status < 500 and response.status not in (408, 429),
            )
        return conn, response
    raise LocalImageError(f"{redact(url)}: more than {MAX_REDIRECTS} redirects", permanent=True)


def check_image_file(path: Path, qemu_img: str = "qemu-img") -> str:
    """The image's format after `qemu-img` found it sound; raises a permanent LocalImageError if not."""
    with path.open("rb") as fh:
        header = fh.read(512)
    fmt = image_format(header)
    problem = qcow2_problem(header)
    if problem is not None:
        raise LocalImageError(f"not a usable image: {problem}", permanent=True)
    try:
        info = subprocess.run(
            [qemu_img, "info", "--output=json", "-f", fmt, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except FileNotFoundError:
        raise LocalImageError(
            f"{qemu_img} is not installed on the operator's machine (needed to check downloaded images)",
            permanent=False,
        ) from None
    if info.returncode != 0:
        raise LocalImageError(f"not a valid {fmt} image: {info.stderr.strip()[:300]}", permanent=True)
    details = json.loads(info.stdout or "{}")
    if details.get("backing-filename") or details.get("full-backing-filename"):
        raise LocalImageError("not a usable image: it names a backing file", permanent=True)
    if fmt == "qcow2":
        checked = subprocess.run(
            [qemu_img, "check", "-q", "-f", "qcow2", str(path)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if checked.returncode not in QEMU_CHECK_OK:
            why = (checked.stderr or checked.stdout).strip()[:300]
            raise LocalImageError(f"the qcow2 image is corrupt (qemu-img check: {why})", permanent=True)
    return fmt


class Downloads:
    """Downloads into `cache_dir` (a private folder: see `private_dir`)."""

    def __init__(
        self, cache_dir: Path, limits: DownloadLimits | None = None, *, qemu_img: str = "qemu-img"
    ) -> None:
        self.cache_dir = cache_dir
        self.limits = limits or DownloadLimits()
        self.qemu_img = qemu_img
        self._done: dict[tuple[str, str | None], Path] = {}
        self._running: dict[tuple[str, str | None], asyncio.Task[Path]] = {}
        self._failed: dict[tuple[str, str | None], tuple[float, LocalImageError]] = {}
        self._progress: dict[tuple[str, str | None], int] = {}
        self._stop = threading.Event()

    def close(self) -> None:
        """Make downloads in flight stop at their next read."""
        self._stop.set()

    async def fetch(self, url: str, expected: str | None, *, wait_s: float | None = None) -> Path:
        """The cached file of `url`: at once when downloaded, else after waiting up to `wait_s` (None: until done)
        for the one download of this URL (started if none runs). Raises LocalImageError (reason ImageDownloading)
        when it is still running after `wait_s`."""
        key = (url, expected)
        done = self._done.get(key)
        if done is not None and done.exists():
            return done
        task = self._running.get(key)
        if task is None:
            failed = self._failed.get(key)
            if failed is not None and time.monotonic() - failed[0] < self.limits.retry_after_s:
                raise failed[1]
            task = asyncio.create_task(self._run(key))
            self._running[key] = task
        try:
            if wait_s is None:
                return await asyncio.shield(task)
            return await asyncio.wait_for(asyncio.shield(task), wait_s)
        except TimeoutError:
            got = self._progress.get(key, 0)
            raise LocalImageError(
                f"{redact(url)} is still downloading ({got} bytes so far)",
                permanent=False,
                reason="ImageDownloading",
            ) from None

    async def _run(self, key: tuple[str, str | None]) -> Path:
        url = key[0]
        try:
            path = await asyncio.to_thread(self._download, key)
        except LocalImageError as exc:
            self._failed[key] = (time.monotonic(), exc)
            raise
        finally:
            self._running.pop(key, None)
            self._progress.pop(key, None)
        self._failed.pop(key, None)
        self._done[key] = path
        log.info("downloaded %s to %s", redact(url), path)
        return path

    def _download(self, key: tuple[str, str | None]) -> Path:
        url, expected = key
        if expected is not None and (self.cache_dir / expected).is_file():
            return self.cache_dir / expected
        partial: Path | None = None
        try:
            private_dir(self.cache_dir)
            fd, name = tempfile.mkstemp(dir=self.cache_dir, prefix=".download-")
            partial = Path(name)
            with os.fdopen(fd, "wb") as out:
                sha = self._copy(url, key, out)
            if expected is not None and sha != expected:
                raise LocalImageError(
                    f"{redact(url)} has sha256 {sha}, but the spec expects {expected}", permanent=True
                )
            check_image_file(partial, self.qemu_img)
            final = self.cache_dir / sha
            os.chmod(partial, 0o600)
            os.replace(partial, final)
            partial = None
            return final
        except LocalImageError as exc:
            raise LocalImageError(f"cannot use {redact(url)}: {exc}", permanent=exc.permanent) from None
        except _Stop:
            raise LocalImageError(f"download of {redact(url)} stopped", permanent=False) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            what = (
                "connect or read timed out"
                if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {exc}"
            )
            raise LocalImageError(f"cannot download {redact(url)}: {what}", permanent=False) from None
        finally:
            if partial is not None:
                partial.unlink(missing_ok=True)

    def _copy(self, url: str, key: tuple[str, str | None], out: BinaryIO) -> str:
        """Stream the body into `out`; the sha256 of what was received, after the length checks."""
        limits = self.limits
        started = time.monotonic()
        conn, response = _open(url, limits)
        try:
            announced = response.getheader("Content-Length")
            length = int(announced) if announced is not None and announced.isdigit() else None
            if length is not None and length > limits.max_bytes:
                raise LocalImageError(
                    f"announces {length} bytes, over the limit {limits.max_bytes}", permanent=True
                )
            digest = hashlib.sha256()
            received = 0
            while True:
                if self._stop.is_set():
                    raise _Stop
                if time.monotonic() - started > limits.total_timeout_s:
                    raise LocalImageError(
                        f"not complete after {limits.total_timeout_s:g} s ({received} bytes)", permanent=False
                    )
                try:
                    chunk = response.read1(CHUNK)
                except http.client.IncompleteRead as exc:
                    received += len(exc.partial)
                    break
                if not chunk:
                    break
                received += len(chunk)
                if received > limits.max_bytes:
                    raise LocalImageError(f"more than {limits.max_bytes} bytes", permanent=True)
                digest.update(chunk)
                out.write(chunk)
                self._progress[key] = received
        finally:
            conn.close()
        if length is not None and received != length:
            raise LocalImageError(
                f"the server announced {length} bytes but sent {received} (cut off)", permanent=False
            )
        if received == 0:
            raise LocalImageError("the server sent an empty body", permanent=False)
        return digest.hexdigest()


def private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) or check that it is ours and not open to others; refuse it otherwise (a cache in
    a shared folder such as /tmp could be swapped or read by other users)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path):
        raise LocalImageError(f"the image cache {path} is not a folder", permanent=False)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise LocalImageError(
            f"the image cache {path} must be owned by the operator's user and not accessible to others",
            permanent=False,
        )
    return path
