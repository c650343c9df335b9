"""Fault injection: the SPEC syntax, the per-node fault files, and which rules fire for one invocation.

SPEC syntax — rules separated by `;`, each rule a list of shell-quoted `key[=value]` tokens::

    SPEC   := RULE { ";" RULE }
    RULE   := { "node=" NODE | "cmd=" PATTERN | ACTION | TRIGGER | "rc=" CODE }
    ACTION := "fail" ["=" MESSAGE]      exit `rc` (default 255) with MESSAGE (default "simulated failure") on stderr
            | "locktimeout" ["=" SECS]  the VM config lock times out (real messages) after SECS (default: the node's
                                        lock timeout); commands that take no VM lock (list, config) are unaffected
            | "hang" ["=" SECS]         the command sleeps SECS (default 3600) before running
            | "slow=" SECS              the command holds the VM config lock SECS longer (others see the lock busy)
            | "noquorum"                commands that write configs fail with `cluster not ready - no quorum?`
            | "noacpi"                  `qm shutdown` is ignored by the guest (times out / needs --forceStop)
            | "noagent"                 the guest agent never answers
            | "down"                    the node refuses SSH connections (its sshd is stopped)
            | "freeze"                  the node's sshd and sessions are SIGSTOPped: connections are accepted by the
                                        kernel but never answered (a hung node); cleared with the other rules
    TRIGGER:= "count=" N                fire for the next N matching calls only (default: every call)
            | "prob=" P                 fire with probability P (0..1) per matching call
            | "skip=" N                 let the first N matching calls through

`PATTERN` is a command prefix matched word by word with shell wildcards: `cmd=qm`, `cmd="qm start"`,
`cmd="qm set 10?"`, `cmd="pvesh get /cluster/resources"`. Without `cmd=` a rule matches every qm/pvesh call.
Without `node=` a rule is copied to every node (its count and skip then apply per node). Examples::

    cmd="qm start" fail="start failed: simulated" count=1
    node=pve2 down
    cmd="qm set" locktimeout prob=0.3; cmd=pvesh hang=30 count=1

Rules live in `DIR/nodes/<node>/faults.json` and are read by every invocation, so they can be changed while
the cluster runs (`pvesim fault`, or `pvesim.control.add_faults`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from pvesim import locks
from pvesim.layout import Layout

ACTIONS = ("fail", "locktimeout", "hang", "slow", "noquorum", "noacpi", "noagent", "down", "freeze")


class SpecError(ValueError):
    pass


class Rule:
    """One fault rule (see the module docstring for the meaning of each field)."""

    FIELDS = ("action", "arg", "node", "cmd", "rc", "count", "prob", "skip", "id")

    def __init__(
        self,
        action: str,
        arg: str | None = None,
        node: str | None = None,
        cmd: str = "",
        rc: int = 255,
        count: int | None = None,
        prob: float = 1.0,
        skip: int = 0,
        id: int = 0,
    ) -> None:
        self.action = action
        self.arg = arg
        self.node = node
        self.cmd = cmd
        self.rc = rc
        self.count = count
        self.prob = prob
        self.skip = skip
        self.id = id

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Rule({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def matches(self, argv: list[str]) -> bool:
        import fnmatch
        import shlex

        words = shlex.split(self.cmd) if self.cmd else []
        if len(words) > len(argv):
            return False
        return all(fnmatch.fnmatchcase(arg, pattern) for pattern, arg in zip(words, argv, strict=False))

    def describe(self) -> str:
        import shlex

        parts = []
        if self.node:
            parts.append(f"node={self.node}")
        if self.cmd:
            parts.append(f"cmd={shlex.quote(self.cmd)}")
        parts.append(self.action if self.arg is None else f"{self.action}={shlex.quote(self.arg)}")
        if self.rc != 255:
            parts.append(f"rc={self.rc}")
        if self.count is not None:
            parts.append(f"count={self.count}")
        if self.prob != 1.0:
            parts.append(f"prob={self.prob}")
        if self.skip:
            parts.append(f"skip={self.skip}")
        return " ".join(parts)


def parse_spec(spec: str) -> list[Rule]:
    """Parse a SPEC (see the module docstring); raises SpecError with a readable message."""
    import shlex

    lexer = shlex.shlex(spec, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    rules: list[Rule] = []
    tokens: list[str] = []
    try:
        all_tokens = list(lexer)
    except ValueError as exc:
        raise SpecError(f"fault spec: {exc}") from None
    for token in [*all_tokens, ";"]:
        if token and set(token) == {";"}:
            if tokens:
                rules.append(_parse_rule(tokens))
            tokens = []
        else:
            tokens.append(token)
    return rules


def _parse_rule(tokens: list[str]) -> Rule:
    values: dict[str, Any] = {}
    action: tuple[str, str | None] | None = None
    for token in tokens:
        key, sep, value = token.partition("=")
        if key in ACTIONS:
            if action is not None:
                raise SpecError(f"fault rule has two actions: {' '.join(tokens)!r}")
            action = (key, value if sep else None)
        elif key in ("node", "cmd") and sep:
            values[key] = value
        elif key in ("rc", "count", "skip") and sep:
            try:
                values[key] = int(value)
            except ValueError:
                raise SpecError(f"fault rule: {key} needs an integer, got {value!r}") from None
        elif key == "prob" and sep:
            try:
                values[key] = float(value)
            except ValueError:
                raise SpecError(f"fault rule: prob needs a number, got {value!r}") from None
            if not 0.0 <= values[key] <= 1.0:
                raise SpecError(f"fault rule: prob must be between 0 and 1, got {value!r}")
        else:
            raise SpecError(f"fault rule: unknown token {token!r} (actions: {', '.join(ACTIONS)})")
    if action is None:
        raise SpecError(f"fault rule without an action: {' '.join(tokens)!r}")
    name, arg = action
    if name in ("hang", "slow", "locktimeout") and arg is not None:
        try:
            float(arg)
        except ValueError:
            raise SpecError(f"fault rule: {name} needs seconds, got {arg!r}") from None
    if name == "slow" and arg is None:
        raise SpecError("fault rule: slow needs seconds (slow=SECONDS)")
    return Rule(action=name, arg=arg, **values)


class NodeFaults:
    def __init__(self, rules: list[Rule] | None = None, next_id: int = 1) -> None:
        self.rules: list[Rule] = rules if rules is not None else []
        self.next_id = next_id

    @property
    def down(self) -> bool:
        return any(rule.action == "down" for rule in self.rules)

    @property
    def frozen(self) -> bool:
        return any(rule.action == "freeze" for rule in self.rules)


def load(layout: Layout, node: str) -> NodeFaults:
    try:
        data = json.loads(layout.faults_file(node).read_text())
    except (FileNotFoundError, ValueError):
        return NodeFaults()
    return NodeFaults([Rule(**r) for r in data.get("rules", [])], data.get("next_id", 1))


def save(layout: Layout, node: str, faults: NodeFaults) -> None:
    path = layout.faults_file(node)
    if not faults.rules:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".faults.tmp{os.getpid()}")
    tmp.write_text(
        json.dumps({"rules": [r.to_dict() for r in faults.rules], "next_id": faults.next_id}, indent=1)
    )
    os.replace(tmp, path)


def _lock_path(layout: Layout, node: str) -> Any:
    return locks.plain_flock(layout.node_dir(node) / "faults.lock")


def add(layout: Layout, node: str, rules: list[Rule]) -> list[Rule]:
    with _lock_path(layout, node):
        faults = load(layout, node)
        added = []
        for rule in rules:
            copy = Rule(**rule.to_dict())
            copy.node = node
            copy.id = faults.next_id
            faults.next_id += 1
            faults.rules.append(copy)
            added.append(copy)
        save(layout, node, faults)
        return added


def clear(layout: Layout, node: str, action: str | None = None) -> None:
    with _lock_path(layout, node):
        faults = load(layout, node)
        faults.rules = [r for r in faults.rules if action is not None and r.action != action]
        save(layout, node, faults)


def _random() -> float:
    return int.from_bytes(os.urandom(4), "big") / 2**32


def fire(layout: Layout, node: str, argv: list[str]) -> list[Rule]:
    """The rules that fire for this invocation (their counters are consumed)."""
    if not layout.faults_file(node).exists():
        return []
    with _lock_path(layout, node):
        faults = load(layout, node)
        fired: list[Rule] = []
        changed = False
        for rule in list(faults.rules):
            if rule.action in ("down", "freeze") or not rule.matches(argv):
                continue
            if rule.skip > 0:
                rule.skip -= 1
                changed = True
                continue
            if rule.prob < 1.0 and _random() >= rule.prob:
                continue
            fired.append(rule)
            if rule.count is not None:
                rule.count -= 1
                changed = True
                if rule.count <= 0:
                    faults.rules.remove(rule)
        if changed:
            save(layout, node, faults)
        return fired
