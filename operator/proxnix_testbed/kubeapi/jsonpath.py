"""The JSONPath subset of kubectl and of CRD `additionalPrinterColumns`, evaluated over plain JSON documents.

Supported: `.field` (with `\\.` escapes), `['key']`, `[N]`, `[-N]`, `[N:M]`, `[*]`, `..field` (recursive),
and filters `[?(@.path OP literal)]` with `==`, `!=`, `<`, `<=`, `>`, `>=` or bare `[?(@.path)]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Step = Callable[[list[Any]], list[Any]]

_FILTER_RE = re.compile(r"^\?\(\s*@((?:\.[^=!<>\s)]+)+)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")


class JsonPathError(ValueError):
    pass


def _field(name: str) -> Step:
    def step(values: list[Any]) -> list[Any]:
        return [v[name] for v in values if isinstance(v, dict) and name in v]

    return step


def _recursive(name: str) -> Step:
    def walk(value: Any, out: list[Any]) -> None:
        if isinstance(value, dict):
            if name in value:
                out.append(value[name])
            for child in value.values():
                walk(child, out)
        elif isinstance(value, list):
            for child in value:
                walk(child, out)

    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for v in values:
            walk(v, out)
        return out

    return step


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


def _bracket(expr: str) -> Step:
    expr = expr.strip()
    if expr == "*":
        return lambda values: [
            item
            for v in values
            for item in (v if isinstance(v, list) else v.values() if isinstance(v, dict) else [])
        ]
    if len(expr) >= 2 and expr[0] == expr[-1] and expr[0] in "\"'":
        return _field(expr[1:-1])
    if m := _FILTER_RE.match(expr):
        path = compile_path(m.group(1))
        op, literal = m.group(2), _literal(m.group(3)) if m.group(3) is not None else None

        def filtered(values: list[Any]) -> list[Any]:
            out: list[Any] = []
            for v in values:
                for item in v if isinstance(v, list) else []:
                    found = path(item)
                    if op is None:
                        if found:
                            out.append(item)
                    elif found and _compare(found[0], op, literal):
                        out.append(item)
            return out

        return filtered
    if re.fullmatch(r"-?\d*:-?\d*", expr):
        start_text, end_text = expr.split(":")
        start = int(start_text) if start_text else None
        end = int(end_text) if end_text else None
        return lambda values: [item for v in values if isinstance(v, list) for item in v[start:end]]
    if re.fullmatch(r"-?\d+", expr):
        index = int(expr)

        def indexed(values: list[Any]) -> list[Any]:
            return [v[index] for v in values if isinstance(v, list) and -len(v) <= index < len(v)]

        return indexed
    raise JsonPathError(f"unsupported JSONPath bracket expression: [{expr}]")


def _read_name(text: str, pos: int) -> tuple[str, int]:
    name = ""
    while pos < len(text) and text[pos] not in ".[":
        if text[pos] == "\\" and pos + 1 < len(text):
            name += text[pos + 1]
            pos += 2
        else:
            name += text[pos]
            pos += 1
    return name, pos


def compile_path(text: str) -> Callable[[Any], list[Any]]:
    """Compile a JSONPath into a function from a document to the list of matched values."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if text.startswith("..", pos):
            name, pos = _read_name(text, pos + 2)
            steps.append(_recursive(name))
        elif char == ".":
            name, pos = _read_name(text, pos + 1)
            if name:
                steps.append(_field(name))
        elif char == "[":
            depth, end = 0, pos
            while end < len(text):
                if text[end] == "[":
                    depth += 1
                elif text[end] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                end += 1
            if end >= len(text):
                raise JsonPathError(f"unterminated [ in {text!r}")
            steps.append(_bracket(text[pos + 1 : end]))
            pos = end + 1
        else:
            name, pos = _read_name(text, pos)
            steps.append(_field(name))

    def evaluate(doc: Any) -> list[Any]:
        values = [doc]
        for step in steps:
            values = step(values)
        return values

    return evaluate
