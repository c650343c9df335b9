"""API identity and shared building blocks: group/version, the model base classes, object references, annotations."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

GROUP = "proxnix.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Annotations users and the webhook write on objects.
ANNOTATION_REQUESTED_AT = f"{GROUP}/requested-at"
"""Manual (or webhook) trigger; its value is echoed to `status.lastHandledReconcileAt` once handled (as in Flux)."""
ANNOTATION_REVISION = f"{GROUP}/revision"
"""A revision hint (a commit sha) from a push webhook: the GitRepo controller fetches at least this commit."""

# A Kubernetes object name (DNS-1123 subdomain, lowercase).
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
K8sName = Annotated[str, StringConstraints(pattern=K8S_NAME_PATTERN, min_length=1, max_length=253)]


OBJECT_DEFAULT: dict[str, Any] = {"default": {}}
"""Schema extra for an object field whose fields all have defaults: the API server fills the object in (and so its
fields' defaults) when it is left out, as the models do."""
LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
"""Schema extra for a list of unique scalars: the API server refuses duplicates (and merges it as a set)."""


def cel_rule(rule: str, message: str) -> dict[str, Any]:
    """Schema extra for a CEL validation rule the API server enforces (`x-kubernetes-validations`); the models
    check the same by hand, as a second line."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=False,
        validate_assignment=True,
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON-compatible dict as the Kubernetes API stores it (aliases, unset optionals left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(ApiModel):
    """Base of status models: tolerant of fields written by newer versions of the operator."""

    model_config = ConfigDict(extra="ignore")


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: K8sName = Field(description="Name of the referenced object in the same namespace.")
