"""Turning a request body into a JSON value: JSON bodies, and GitHub/Gitea's form-encoded `payload=` bodies.

Only the media type is looked at here, never the sender: a body is bytes in, a JSON value out, or `PayloadError`
(400) / `UnsupportedMediaType` (415). Deeply nested or otherwise hostile JSON is a `PayloadError`, never a crash.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from proxnix.sources.webhooks.events import PayloadError, UnsupportedMediaType

JSON_TYPES = frozenset({"application/json", "text/json"})
FORM_TYPE = "application/x-www-form-urlencoded"


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header value, lowercased, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _json(text: bytes | str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"body is not valid JSON: {type(exc).__name__}") from None


def decode(content_type: str | None, body: bytes) -> object:
    """The JSON value of `body`, sent with `content_type`."""
    kind = media_type(content_type)
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return _json(body)
    if kind == FORM_TYPE:
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=64)
        except (UnicodeDecodeError, ValueError):
            raise PayloadError("form body is not valid UTF-8 form data") from None
        values = form.get("payload")
        if not values:
            raise PayloadError("form body has no `payload` field")
        return _json(values[0])
    shown = kind or "none"
    raise UnsupportedMediaType(f"content type {shown} is not supported: send application/json")
