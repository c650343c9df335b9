"""Call logs of a simulated cluster: one JSON line per qm/pvesh invocation and per SSH session, per node.

`DIR/nodes/<node>/calls.jsonl` (written by every qm/pvesh process; `ts` and `duration` are measured from the
start of the simulator's code, after the Python interpreter started, and include `latency` and faults)::

    {"ts": 1732590000.12, "node": "pve1", "tool": "qm", "argv": ["qm", "start", "100"],
     "duration": 0.031, "rc": 0, "fault": null}

`DIR/nodes/<node>/sessions.jsonl` (written by the session wrapper; `ts` in whole seconds, `duration` in 10 ms)::

    {"ts": 1732590000, "node": "pve1", "command": "qm list; qm config 100", "duration": 0.07, "rc": 0}

Use `read(dir)` / `read_sessions(dir)` from tests and benchmarks, e.g.
`sum(1 for c in read(d, "pve1") if c.startswith("qm", "create"))`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from pvesim.layout import Layout


class Call(NamedTuple):
    """One qm or pvesh invocation."""

    ts: float
    node: str
    tool: str
    argv: tuple[str, ...]
    duration: float
    rc: int | None
    fault: str | None = None

    @property
    def command(self) -> str:
        return " ".join(self.argv)

    def startswith(self, *words: str) -> bool:
        return self.argv[: len(words)] == words


class Session(NamedTuple):
    """One SSH session (exec request or subsystem) and the command line the client sent."""

    ts: float
    node: str
    command: str
    duration: float
    rc: int | None


def append(layout: Layout, node: str, record: dict[str, Any]) -> None:
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(layout.calls_file(node), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _nodes(layout: Layout, node: str | None) -> list[str]:
    if node is not None:
        return [node]
    return layout.nodes()


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    result = []
    for line in text.splitlines():
        try:
            result.append(json.loads(line))
        except ValueError:
            continue  # a command line with control characters the shell wrapper could not escape
    return result


def read(state_dir: str | os.PathLike[str], node: str | None = None) -> list[Call]:
    """All qm/pvesh calls (of `node`, or of every node), oldest first."""
    layout = Layout(Path(state_dir))
    calls = [
        Call(
            ts=r["ts"],
            node=r["node"],
            tool=r["tool"],
            argv=tuple(r["argv"]),
            duration=r["duration"],
            rc=r.get("rc"),
            fault=r.get("fault"),
        )
        for n in _nodes(layout, node)
        for r in _lines(layout.calls_file(n))
    ]
    return sorted(calls, key=lambda c: c.ts)


def read_sessions(state_dir: str | os.PathLike[str], node: str | None = None) -> list[Session]:
    """All SSH sessions (of `node`, or of every node), oldest first."""
    layout = Layout(Path(state_dir))
    sessions = [
        Session(ts=r["ts"], node=r["node"], command=r["command"], duration=r["duration"], rc=r.get("rc"))
        for n in _nodes(layout, node)
        for r in _lines(layout.sessions_file(n))
    ]
    return sorted(sessions, key=lambda s: s.ts)


def clear(state_dir: str | os.PathLike[str], node: str | None = None) -> None:
    layout = Layout(Path(state_dir))
    for n in _nodes(layout, node):
        layout.calls_file(n).unlink(missing_ok=True)
        layout.sessions_file(n).unlink(missing_ok=True)
