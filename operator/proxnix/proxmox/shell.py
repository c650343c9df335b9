"""Turning argv lists into one remote shell command line, and the defensive checks every value passes first.

The remote side of an SSH exec is a shell: `shell_join` quotes every element with `shlex.quote`, so no value can
change the command's structure. The `check_*` helpers re-validate values that the API models already validated
(VMIDs, sizes, identifiers), so a builder called with a bad primitive fails loudly here instead of on the node.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from proxnix.api.scalars import (
    BRIDGE_PATTERN,
    DNS_NAME_PATTERN,
    STORAGE_ID_PATTERN,
    TAG_PATTERN,
    VMID_MAX,
    VMID_MIN,
)

# A config key as Proxmox writes it (`scsi0`, `net0`, `ipconfig0`, `vmgenid`).
CONFIG_KEY_PATTERN = r"^[a-z][a-z_]*[0-9]*$"
DISK_SLOT_PATTERN = r"^(scsi|virtio|sata|ide)[0-9]{1,2}$"
# An absolute path on the node without whitespace, quotes or shell metacharacters (quoted anyway).
REMOTE_PATH_PATTERN = r"^/[A-Za-z0-9._/+=@-]*$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


def shell_join(argv: Iterable[str]) -> str:
    """One shell command line with every element quoted (`shlex.quote`): safe for the remote shell."""
    parts = list(argv)
    if not parts:
        raise ValueError("empty command")
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"command elements must be str, got {type(part).__name__}: {part!r}")
        if "\x00" in part:
            raise ValueError("command elements must not contain NUL bytes")
    return " ".join(shlex.quote(part) for part in parts)


def check_vmid(vmid: object) -> int:
    """A Proxmox VMID (100..999999999) as a real int (not a bool, not a string)."""
    if type(vmid) is not int or not VMID_MIN <= vmid <= VMID_MAX:
        raise ValueError(f"invalid VMID {vmid!r}: must be an integer in {VMID_MIN}..{VMID_MAX}")
    return vmid


def check_int(value: object, what: str, *, minimum: int, maximum: int) -> int:
    """An int in [minimum, maximum]."""
    if type(value) is not int or not minimum <= value <= maximum:
        raise ValueError(f"invalid {what} {value!r}: must be an integer in {minimum}..{maximum}")
    return value


def check_pattern(value: object, pattern: str, what: str, *, max_length: int = 255) -> str:
    """A string fully matching `pattern` and no longer than `max_length`."""
    if not isinstance(value, str) or len(value) > max_length or not re.fullmatch(pattern, value):
        raise ValueError(f"invalid {what} {value!r}")
    return value


def check_storage(value: object) -> str:
    return check_pattern(value, STORAGE_ID_PATTERN, "storage ID", max_length=64)


def check_bridge(value: object) -> str:
    return check_pattern(value, BRIDGE_PATTERN, "bridge", max_length=15)


def check_dns_name(value: object, what: str = "name") -> str:
    return check_pattern(value, DNS_NAME_PATTERN, what, max_length=253)


def check_tag(value: object) -> str:
    return check_pattern(value, TAG_PATTERN, "tag", max_length=128)


def check_slot(value: object) -> str:
    return check_pattern(value, DISK_SLOT_PATTERN, "disk slot", max_length=8)


def check_config_key(value: object) -> str:
    return check_pattern(value, CONFIG_KEY_PATTERN, "config key", max_length=32)


def check_remote_path(value: object) -> str:
    path = check_pattern(value, REMOTE_PATH_PATTERN, "remote path", max_length=1024)
    if "/../" in path + "/" or path.endswith("/.."):
        raise ValueError(f"invalid remote path {value!r}: no '..' components")
    return path


def check_sha256(value: object) -> str:
    return check_pattern(value, SHA256_PATTERN, "sha256", max_length=64)


def check_text(value: object, what: str, *, max_length: int = 8192) -> str:
    """Free text for a config value (a description): printable, bounded, no NUL."""
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        raise ValueError(f"invalid {what}: must be text of at most {max_length} characters")
    return value


# Programs whose first argument names what the call does (`qm create`, `pvesh get`): metrics count them apart.
_SUBCOMMAND_PROGRAMS = frozenset({"qm", "pvesh"})


def command_kind(command: str) -> str:
    """A short, bounded label of what a remote command does, for metrics: `qm create`, `pvesh get`, `cat`, or
    `script` for a compound shell command (the inventory, the image-cache scripts)."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return "script"
    # Unquoted operators come out as tokens of their own (`;`, `&&`, `|`, ...); quoted ones stay inside words.
    if not words or any(w and set(w) <= set("();<>|&") for w in words):
        return "script"
    program = words[0].rsplit("/", 1)[-1]
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", program):
        return "script"
    if program in _SUBCOMMAND_PROGRAMS and len(words) > 1 and re.fullmatch(r"[a-z][a-z-]{0,31}", words[1]):
        return f"{program} {words[1]}"
    return program
