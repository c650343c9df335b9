"""Output formatting shared by qm and pvesh: the `qm list` table, `qm status --verbose`, Perl's number
stringification, `render_bytes`, Perl JSON (pretty: 3-space indent, `"key" : value`, sorted keys) and
pvesh's compact key-sorted JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

MIB = 1024 * 1024
GIB = 1024 * 1024 * 1024

LIST_HEADER_FMT = "%10s %-20s %-10s %-10s %12s %-10s\n"
LIST_ROW_FMT = "%10s %-20s %-10s %-10s %12.2f %-10s\n"


def perl_num(value: float | int) -> str:
    """How Perl prints a number (`%.15g`; integral floats without a decimal point)."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.15g}"


def qm_list_header() -> str:
    return LIST_HEADER_FMT % ("VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID")


def qm_list_row(vmid: int, name: str, status: str, maxmem: int, maxdisk: int, pid: int) -> str:
    return LIST_ROW_FMT % (vmid, name, status, perl_num(maxmem / MIB), maxdisk / GIB, pid or 0)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return perl_num(value)
    return str(value)


def recursive_hash(stat: dict[str, Any]) -> str:
    """`qm status --verbose`: sorted `key: value` lines, nested hashes/lists indented by one tab per level."""
    out: list[str] = []

    def emit(prefix: str, value: Any, key: str | None) -> None:
        if isinstance(value, dict):
            if key is not None:
                out.append(f"{prefix}{key}:\n")
            for sub in sorted(value):
                emit("\t" + prefix, value[sub], sub)
        elif isinstance(value, list):
            if key is not None:
                out.append(f"{prefix}{key}:\n")
            for item in value:
                emit("\t" + prefix, item, None)
        elif value is not None:
            out.append(
                f"{prefix}{key}: {_scalar(value)}\n" if key is not None else f"{prefix}{_scalar(value)}\n"
            )

    for key in sorted(stat):
        emit("", stat[key], key)
    return "".join(out)


def render_bytes(value: float, precision: int | None = None) -> str:
    """PVE::Format::render_bytes (B, KiB, MiB, ...)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    unit = 0
    if value > 1023:
        unit = min(int(math.log(value) / math.log(1024)), len(units) - 1)
        value = value / 1024**unit
    if precision is not None:
        return f"{value:.{precision}f} {units[unit]}"
    return f"{perl_num(value)} {units[unit]}"


def perl_json_pretty(value: Any) -> str:
    """JSON->new->pretty->canonical output (with the trailing newline)."""
    return _pretty(value, 0) + "\n"


def _pretty(value: Any, level: int) -> str:
    pad = "   " * (level + 1)
    end = "   " * level
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)} : {_pretty(value[k], level + 1)}"
            for k in sorted(value)
        ]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [pad + _pretty(item, level + 1) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return json.dumps(value, ensure_ascii=False)


def compact_json(value: Any) -> str:
    """pvesh --output-format json: compact, key-sorted, one trailing newline."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
