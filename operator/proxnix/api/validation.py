"""Spec validation as every handler does it: one entry point, one way to word a pydantic error for a condition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class InvalidSpec(ValueError):
    """An object's spec does not validate; the message names each field and what is wrong with it."""


def describe(exc: ValidationError) -> str:
    """A pydantic error as one line a user can act on: `field.path: message; other.field: message`."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def validate_spec(model: type[M], spec: Mapping[str, Any]) -> M:
    """The typed spec, or `InvalidSpec` with `describe`'s message."""
    try:
        return model.model_validate(dict(spec))
    except ValidationError as exc:
        raise InvalidSpec(describe(exc)) from None
