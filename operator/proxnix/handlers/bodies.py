"""What every kind's handlers read off a kopf body the same way: its object reference and its generation."""

from __future__ import annotations

import kopf

from proxnix.api.kinds import KindInfo, ObjectRef


def object_ref(info: KindInfo, body: kopf.Body) -> ObjectRef:
    """The object the body is, for status writes and Events."""
    return ObjectRef(info, body.metadata.namespace or "", body.metadata.name or "", body.metadata.uid or "")


def generation(body: kopf.Body) -> int:
    """The object's metadata.generation (0 when the server did not set one)."""
    return int(body.metadata.get("generation") or 0)
