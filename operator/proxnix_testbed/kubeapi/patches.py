"""The patch formats of the Kubernetes API applied to a plain JSON document.

- JSON patch (RFC 6902, `application/json-patch+json`), with `test` failures reported as 422 by the caller;
- JSON merge patch (RFC 7386, `application/merge-patch+json`);
- strategic merge patch (`application/strategic-merge-patch+json`) approximated as a merge patch: the `$patch`,
  `$retainKeys`, `$setElementOrder/...` and `$deleteFromPrimitiveList/...` directives are honoured for maps and
  primitive lists; lists of objects are replaced (no merge keys).
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied: a failed `test`, a missing path, a malformed operation."""


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [_unescape(t) for t in path[1:].split("/")]


def _resolve_parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    current = doc
    for token in tokens[:-1]:
        if isinstance(current, dict):
            if token not in current:
                raise PatchError(f"doc is missing path: {path!r}")
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(current, token, path, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return current, tokens[-1]


def _index(items: list[Any], token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:  # noqa: S105 - the JSON-pointer "end of array" token
        return len(items)
    if not token.isdigit():
        raise PatchError(f"invalid array index {token!r} in {path!r}")
    index = int(token)
    if index > len(items) or (index == len(items) and not allow_end):
        raise PatchError(f"array index out of bounds in {path!r}")
    return index


def _get(doc: Any, path: str) -> Any:
    current = doc
    for token in _pointer(path):
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return current


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _resolve_parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _resolve_parent(doc, tokens, path)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise PatchError(f"unable to remove nonexistent key: {path!r}")
    return doc


def apply_json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    result: Any = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "test":
            actual = _get(result, path)
            if actual != op.get("value"):
                raise PatchError(
                    f"testing value {path} failed: expected {op.get('value')!r}, found {actual!r}"
                )
        elif kind == "add":
            result = _add(result, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            result = _remove(result, path)
        elif kind == "replace":
            _get(result, path)
            result = (
                _add(_remove(result, path), path, copy.deepcopy(op.get("value"))) if path else op.get("value")
            )
        elif kind == "move":
            value = _get(result, op["from"])
            result = _add(_remove(result, op["from"]), path, value)
        elif kind == "copy":
            result = _add(result, path, copy.deepcopy(_get(result, op["from"])))
        else:
            raise PatchError(f"unexpected JSON patch operation: {kind!r}")
    if not isinstance(result, dict):
        raise PatchError("the patched document is not an object")
    return result


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def apply_strategic_merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    result = dict(doc) if isinstance(doc, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
        elif key.startswith("$"):
            continue
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key == "finalizers" and isinstance(result.get(key), list):
            # ObjectMeta.finalizers has patchStrategy=merge: union, keeping order.
            result[key] = list(result[key]) + [item for item in value if item not in result[key]]
        else:
            result[key] = apply_strategic_merge_patch(result.get(key), value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result
