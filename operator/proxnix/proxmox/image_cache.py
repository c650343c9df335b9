"""The node's image cache (pure part): file names, and the two remote scripts of a content-addressed upload.

Images live in the ProxmoxNode's `imageCacheDir` as `<sha256>.<format>`. A file appears under that name only by an
atomic rename after its sha256 was verified on the node, so "the final name exists with the right size" means "the
node has this image". Uploads stream into `.<sha256>.partial-<nonce>` first (`receive_script`); stale partials
(older than a day) are swept by the probe.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from proxnix.proxmox.parsing import fail, output_lines
from proxnix.proxmox.shell import check_int, check_pattern, check_remote_path, check_sha256

QCOW2_MAGIC = b"QFI\xfb"
# qcow2 header (big endian): magic(4) version(4) backing_file_offset(8) backing_file_size(4) cluster_bits(4)
# size(8) ... incompatible_features(8) at 72 (version 3 only). Bit 2 of the incompatible features: external data file.
QCOW2_HEADER_BYTES = 80
QCOW2_EXTERNAL_DATA_FILE = 1 << 2
VMDK_MAGIC = b"KDMV"
PARTIAL_TTL_MINUTES = 1440
MAX_IMAGE_BYTES = 1 << 50


def image_format(header: bytes) -> str:
    """The image format from the file's first bytes: qcow2, vmdk, else raw."""
    if header.startswith(QCOW2_MAGIC):
        return "qcow2"
    if header.startswith(VMDK_MAGIC):
        return "vmdk"
    return "raw"


def qcow2_problem(header: bytes) -> str | None:
    """Why a qcow2 header must not become a VM disk, or None. A backing file or an external data file would make
    the node read a file the image names (any file on the node) into the VM's disk."""
    if not header.startswith(QCOW2_MAGIC):
        return None
    if len(header) < 32:
        return "truncated qcow2 header"
    version = int.from_bytes(header[4:8], "big")
    if version not in (2, 3):
        return f"unsupported qcow2 version {version}"
    if int.from_bytes(header[8:16], "big") != 0:
        return "the qcow2 image names a backing file (refused: the node would read that file into the disk)"
    if version == 3:
        if len(header) < QCOW2_HEADER_BYTES:
            return "truncated qcow2 header"
        if int.from_bytes(header[72:80], "big") & QCOW2_EXTERNAL_DATA_FILE:
            return "the qcow2 image uses an external data file (refused)"
    return None


def cached_name(sha256: str, fmt: str) -> str:
    if fmt not in ("qcow2", "vmdk", "raw"):
        raise ValueError(f"invalid image format {fmt!r}")
    return f"{check_sha256(sha256)}.{fmt}"


def partial_name(sha256: str, nonce: str) -> str:
    return (
        f".{check_sha256(sha256)}.partial-{check_pattern(nonce, r'^[0-9a-f]{8,32}$', 'nonce', max_length=32)}"
    )


def join(cache_dir: str, name: str) -> str:
    return check_remote_path(cache_dir.rstrip("/") + "/" + name)


def probe_script(cache_dir: str, final_name: str) -> str:
    """Create the cache folder and keep it (and a cached image) readable by root only (also for folders and files
    made by older versions), sweep stale partials, and report `present <size>` or `absent` for the image."""
    d = shlex.quote(check_remote_path(cache_dir))
    f = shlex.quote(join(cache_dir, final_name))
    return (
        f"mkdir -p -m 0700 -- {d} && chmod 0700 -- {d} && "
        f"find {d} -maxdepth 1 -type f -name '.*.partial-*' -mmin +{PARTIAL_TTL_MINUTES} -delete 2>/dev/null; "
        f"if [ -f {f} ]; then chmod 0600 -- {f}; printf 'present %s\\n' \"$(stat -c %s -- {f})\"; "
        "else echo absent; fi"
    )


def parse_probe(stdout: str, *, command: str = "image probe") -> int | None:
    """The cached file's size, or None when absent."""
    lines = [line for line in output_lines(stdout) if line.strip()]
    if len(lines) == 1:
        if lines[0] == "absent":
            return None
        m = re.fullmatch(r"present ([0-9]+)", lines[0])
        if m:
            return int(m.group(1))
    fail(command, "expected 'present <size>' or 'absent'", lines[-1] if lines else "")


def receive_script(partial_path: str, final_path: str, sha256: str, size: int) -> str:
    """Receive an image on stdin and publish it only when verified, in one remote command.

    `cat` writes the stream to the partial file (mode 0600 by the umask); the file is renamed to its final name only
    if it has `size` bytes and its sha256 is `sha256`. Every other ending removes the partial file (EXIT trap): a
    short stream (the client was cancelled or the connection dropped: the node sees EOF), a failed write, a signal
    (the `timeout` wrapper's TERM). The hash is `openssl dgst` where the node has it (OpenSSL uses the CPU's SHA
    instructions; coreutils' `sha256sum` does not and is about 5x slower), else `sha256sum`. It reads the file just
    written (page cache) after the stream ends: measured cheaper than hashing the stream on the fly through `tee`,
    whose 8 KiB reads and extra pipe cost more than the second read (hack/bench/upload.py).

    Prints `ok`, `short <bytes received>`, or `mismatch <sha256 of the file>`.
    """
    p = shlex.quote(check_remote_path(partial_path))
    f = shlex.quote(check_remote_path(final_path))
    s = check_sha256(sha256)
    n = check_int(size, "image size", minimum=0, maximum=MAX_IMAGE_BYTES)
    return (
        f"umask 077; P={p}; F={f}; "
        """trap 'rm -f -- "$P"' EXIT; trap 'exit 1' HUP INT TERM PIPE; """
        """cat > "$P" || exit 1; n=$(stat -c %s -- "$P") || exit 1; """
        f"""if [ "$n" != {n} ]; then echo "short $n"; exit 0; fi; """
        # openssl takes no `--`; the path is absolute (check_remote_path), so never read as an option
        """if command -v openssl >/dev/null 2>&1; then sum=$(openssl dgst -sha256 -r "$P"); """
        """else sum=$(sha256sum -- "$P"); fi || exit 1; set -- $sum; """
        f'if [ "$1" = {s} ]; then chmod 0600 -- "$P" && mv -f -- "$P" "$F" && echo ok; else echo "mismatch $1"; fi'
    )


@dataclass(frozen=True)
class ReceiveResult:
    """What `receive_script` reported: published (`ok`), or why not (the bytes received, or the file's sha256)."""

    ok: bool
    received: int | None = None
    actual_sha256: str = ""

    def problem(self, size: int) -> str:
        if self.received is not None:
            return f"the node received {self.received} of {size} bytes"
        return f"the node computed sha256 {self.actual_sha256}"


def parse_receive(stdout: str, *, command: str = "image receive") -> ReceiveResult:
    lines = [line for line in output_lines(stdout) if line.strip()]
    if lines == ["ok"]:
        return ReceiveResult(ok=True)
    if len(lines) == 1:
        if m := re.fullmatch(r"short ([0-9]+)", lines[0]):
            return ReceiveResult(ok=False, received=int(m.group(1)))
        if m := re.fullmatch(r"mismatch ([0-9a-f]{64})", lines[0]):
            return ReceiveResult(ok=False, actual_sha256=m.group(1))
    fail(command, "expected 'ok', 'short <bytes>' or 'mismatch <sha256>'", lines[-1] if lines else "")
