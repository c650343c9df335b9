"""Kubernetes API errors: the `Status` objects the emulator answers with, and the exception that carries them.

Each helper builds the error a real kube-apiserver returns in that situation (same HTTP code, `reason`,
message wording and `details`), so clients that branch on them (kopf, kubectl, the python client) react as
they would against a real cluster.
"""

from __future__ import annotations

from typing import Any

from proxnix_testbed.kubeapi.registry import ResourceType


class ApiError(Exception):
    """An API failure rendered as a `kind: Status` body with the given HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType | None, name: str | None, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt is not None:
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
    details.update(extra)
    return details


def qualified(rt: ResourceType) -> str:
    """`proxmoxvms.proxnix.io` or `secrets`: how the apiserver names a resource in messages."""
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(rt)} "{name}" not found', _details(rt, name))


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
    )


def unknown_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified(rt)} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {qualified(rt)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, _details(rt, name))


def precondition_failed(rt: ResourceType, name: str, what: str, wanted: str, actual: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {qualified(rt)} "{name}": Precondition failed: '
        f"{what} in precondition: {wanted}, {what} in object meta: {actual}"
    )
    return ApiError(409, "Conflict", message, _details(rt, name))


def invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid; each cause is `{"type": ..., "message": ..., "field": ...}`."""
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    texts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    message = f'{kind} "{name}" is invalid: {joined}'
    return ApiError(422, "Invalid", message, _details(rt, name, causes=causes))


def cause(field: str, message: str, kind: str = "FieldValueInvalid") -> dict[str, str]:
    return {"reason": kind, "message": message, "field": field}


def unprocessable(message: str) -> ApiError:
    """422 for patches that cannot be applied (e.g. a failed JSON-patch `test`)."""
    return ApiError(422, "UnprocessableEntity", message, {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message, {})


def forbidden(rt: ResourceType | None, name: str | None, message: str) -> ApiError:
    return ApiError(403, "Forbidden", message, _details(rt, name))


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}", {}
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message, {})
