"""The node's image cache (pure part): file names, and the small remote scripts of a content-addressed upload.

Images live in the ProxmoxNode's `imageCacheDir` as `<sha256>.<format>`. A file appears under that name only by an
atomic rename after its sha256 was verified on the node, so "the final name exists with the right size" means "the
node has this image". Uploads go to `.<sha256>.partial-<nonce>` first; stale partials (older than a day) are swept
by the probe.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from proxnix.proxmox.parsing import fail, output_lines
from proxnix.proxmox.shell import check_pattern, check_remote_path, check_sha256

QCOW2_MAGIC = b"QFI\xfb"
# qcow2 header (big endian): magic(4) version(4) backing_file_offset(8) backing_file_size(4) cluster_bits(4)
# size(8) ... incompatible_features(8) at 72 (version 3 only). Bit 2 of the incompatible features: external data file.
QCOW2_HEADER_BYTES = 80
QCOW2_EXTERNAL_DATA_FILE = 1 << 2
VMDK_MAGIC = b"KDMV"
PARTIAL_TTL_MINUTES = 1440


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


def finalize_script(partial_path: str, final_path: str, sha256: str) -> str:
    """Verify the uploaded partial file's sha256 on the node; make it readable by root only and rename it into place
    if it matches, else delete it.

    Prints `ok` or `mismatch <actual>`.
    """
    p = shlex.quote(check_remote_path(partial_path))
    f = shlex.quote(check_remote_path(final_path))
    s = check_sha256(sha256)
    return (
        f"sum=$(sha256sum -- {p}) || exit 1; set -- $sum; "
        f'if [ "$1" = {s} ]; then chmod 0600 -- {p} && mv -f -- {p} {f} && echo ok; else rm -f -- {p}; echo "mismatch $1"; fi'
    )


def verify_script(path: str) -> str:
    return f"sha256sum -- {shlex.quote(check_remote_path(path))}"


@dataclass(frozen=True)
class FinalizeResult:
    ok: bool
    actual_sha256: str


def parse_finalize(stdout: str, *, command: str = "image verify") -> FinalizeResult:
    lines = [line for line in output_lines(stdout) if line.strip()]
    if lines == ["ok"]:
        return FinalizeResult(ok=True, actual_sha256="")
    if len(lines) == 1:
        m = re.fullmatch(r"mismatch ([0-9a-f]{64})", lines[0])
        if m:
            return FinalizeResult(ok=False, actual_sha256=m.group(1))
    fail(command, "expected 'ok' or 'mismatch <sha256>'", lines[-1] if lines else "")


def parse_sha256sum(stdout: str, *, command: str = "sha256sum") -> str:
    lines = [line for line in output_lines(stdout) if line.strip()]
    m = re.match(r"^([0-9a-f]{64}) [ *]", lines[0]) if len(lines) == 1 else None
    if not m:
        fail(command, "expected '<sha256>  <path>'", lines[0] if lines else "")
    return m.group(1)
