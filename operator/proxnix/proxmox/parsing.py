"""Shared helpers of the output parsers: splitting output into lines and raising one ParseError that names the
command and the offending line."""

from __future__ import annotations

import json
from typing import NoReturn

from proxnix.proxmox.errors import ParseError

MAX_LINE_IN_ERROR = 300


def parse_error(command: str, reason: str, line: str = "") -> ParseError:
    """The ParseError for `command`: `reason` plus the offending line (truncated)."""
    shown = line if len(line) <= MAX_LINE_IN_ERROR else line[:MAX_LINE_IN_ERROR] + "…"
    return ParseError(f"cannot parse output of {command!r}: {reason}", command=command, line=shown)


def fail(command: str, reason: str, line: str = "") -> NoReturn:
    raise parse_error(command, reason, line)


def output_lines(text: str) -> list[str]:
    """Lines of command output, without line endings (CRLF tolerated)."""
    return [line.rstrip("\r") for line in text.split("\n")]


def load_json(command: str, text: str) -> object:
    """Parse JSON output (pvesh, guest agent); a ParseError names the first bad line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.split("\n")
        bad = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else text[:MAX_LINE_IN_ERROR]
        fail(command, f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", bad)
