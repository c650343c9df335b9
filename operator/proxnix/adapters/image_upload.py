"""Image upload: stream a disk image into a node's image cache, content-addressed by sha256, verified on the node.

Steps (the remote scripts are in `proxnix.proxmox.image_cache`):
1. hash the local file (in a thread) and check it against the expected sha256, if one is given — skipped when
   the caller vouches for the hash (`hashed=True`: the nix adapter hashed the immutable store path once);
2. one remote call: create the cache folder, sweep stale partial uploads, report whether `<sha256>.<format>`
   is already there with the right size → skip;
3. one remote call on the same pooled connection, the file streamed to its stdin (`receive_script`): the node
   writes `.<sha256>.partial-<nonce>`, hashes it, and renames it to its final name only if size and hash match,
   else deletes it (also on a short stream, a write error or a signal). No second round trip, no SFTP session;
   a file is never visible under its final name unless complete and verified.
The caller then imports the cached path (`ProxmoxClient.create_vm(import_from=...)` or `import_image`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from proxnix.adapters.hashing import file_sha256
from proxnix.adapters.proxmox_client import RetryPolicy
from proxnix.adapters.ssh_pool import SshPool
from proxnix.proxmox.classify import classify_failure
from proxnix.proxmox.errors import ImageError, TransferFailed, TransientError
from proxnix.proxmox.image_cache import (
    cached_name,
    image_format,
    join,
    parse_probe,
    parse_receive,
    partial_name,
    probe_script,
    receive_script,
)
from proxnix.proxmox.shell import check_remote_path, check_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadResult:
    """Where the image is on the node, and what the upload cost: `seconds` of the transfer (the node's check
    included), `bytes_per_second` of it (None when skipped), and the local hash's `hash_seconds` (0 when the
    caller vouched for the hash)."""

    remote_path: str
    sha256: str
    size: int
    format: str
    skipped: bool
    seconds: float
    bytes_per_second: float | None
    hash_seconds: float = 0.0


TRANSFER_BASE_S = 600.0
"""A transfer's deadline: this much, plus the image's size at `TRANSFER_MIN_RATE`."""
TRANSFER_MIN_RATE = 1024 * 1024
"""Bytes per second below which a transfer is taken as stuck (10 GiB: about 3 hours in all)."""


def transfer_deadline(size: int) -> float:
    """Seconds an upload of `size` bytes may take, transfer and verification on the node included."""
    return TRANSFER_BASE_S + size / TRANSFER_MIN_RATE


def _size_and_header(path: Path) -> tuple[int, bytes]:
    with path.open("rb") as f:
        return path.stat().st_size, f.read(16)


async def _check(pool: SshPool, script: str, what: str) -> str:
    result = await pool.run(script, timeout_s=pool.settings.command_timeout)
    if result.exit_status != 0:
        raise classify_failure(what, result.exit_status, result.stdout, result.stderr, node=pool.target.node)
    return result.stdout


async def upload_image(
    pool: SshPool,
    local_path: str | Path,
    cache_dir: str,
    *,
    expected_sha256: str | None = None,
    retry: RetryPolicy | None = None,
    transfer_timeout_s: float | None = None,
    hashed: bool = False,
) -> UploadResult:
    """Make sure the node has the image in `cache_dir`; upload it if not. Transient failures are retried.

    With `hashed`, the caller vouches that `expected_sha256` is the file's hash (it hashed it itself), so the file
    is not read twice; the node still verifies the uploaded copy against it before publishing it. The transfer's
    deadline is `transfer_timeout_s`, by default `transfer_deadline(size)` (a big image on a slow link gets its time).
    """
    path = Path(local_path)
    check_remote_path(cache_dir)
    if expected_sha256 is not None:
        check_sha256(expected_sha256)
    if hashed and expected_sha256 is None:
        raise ValueError("hashed=True needs expected_sha256")
    hash_started = time.monotonic()
    try:
        if hashed and expected_sha256 is not None:
            sha256, size, header = expected_sha256, *(await asyncio.to_thread(_size_and_header, path))
        else:
            digest = await asyncio.to_thread(file_sha256, path)
            sha256, size, header = digest.sha256, digest.size, digest.header
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from None
    hash_seconds = time.monotonic() - hash_started if not hashed else 0.0
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise ImageError(f"image {path} has sha256 {sha256}, expected {expected_sha256}")
    fmt = image_format(header)
    final_name = cached_name(sha256, fmt)
    final = join(cache_dir, final_name)
    policy = retry or RetryPolicy()

    attempt = 1
    while True:
        try:
            present = parse_probe(await _check(pool, probe_script(cache_dir, final_name), "image probe"))
            if present == size:
                log.info("node %s: image %s already cached", pool.target.node, final)
                return UploadResult(
                    final, sha256, size, fmt, skipped=True, seconds=0.0, bytes_per_second=None,
                    hash_seconds=hash_seconds,
                )  # fmt: skip
            partial = join(cache_dir, partial_name(sha256, secrets.token_hex(8)))
            deadline = transfer_deadline(size) if transfer_timeout_s is None else transfer_timeout_s
            seconds = await _transfer(pool, path, partial, final, sha256, size, deadline)
            pool.stats.record_upload(size, seconds)
            rate = size / seconds if seconds > 0 else None
            log.info("node %s: uploaded %s (%d bytes in %.2f s)", pool.target.node, final, size, seconds)
            return UploadResult(
                final, sha256, size, fmt, skipped=False, seconds=seconds, bytes_per_second=rate,
                hash_seconds=hash_seconds,
            )  # fmt: skip
        except TransientError as exc:
            if attempt >= policy.attempts:
                raise
            delay = policy.delay(attempt)
            log.info("node %s: image upload: %s; retrying in %.2f s", pool.target.node, exc, delay)
            await asyncio.sleep(delay)
            attempt += 1


async def _transfer(
    pool: SshPool, path: Path, partial: str, final: str, sha256: str, size: int, timeout_s: float
) -> float:
    """Stream the file into `partial`, published as `final` by the node once verified; the seconds it took.
    On any failure the partial file is removed (the node's script does; this is the fallback, best effort)."""
    started = time.monotonic()
    try:
        result = await pool.run_with_file(
            receive_script(partial, final, sha256, size), path, timeout_s=timeout_s
        )
        if result.exit_status != 0:
            raise classify_failure(
                "image receive", result.exit_status, result.stdout, result.stderr, node=pool.target.node
            )
        verdict = parse_receive(result.stdout)
        if not verdict.ok:
            raise TransferFailed(
                f"uploaded image {final} did not verify: {verdict.problem(size)}", node=pool.target.node
            )
    except BaseException:
        try:
            await asyncio.shield(pool.run(["rm", "-f", "--", partial], timeout_s=30, interruptible=False))
        except Exception as cleanup:  # the original error matters more
            log.warning("node %s: could not remove partial upload %s: %s", pool.target.node, partial, cleanup)
        raise
    return time.monotonic() - started
