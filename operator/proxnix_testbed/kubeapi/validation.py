"""Object-metadata validation as the apiserver does it: names (DNS-1123), label keys and values, finalizers.

Each function returns error texts (empty when valid); callers wrap them as 422 `causes` on the right field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from proxnix_testbed.kubeapi.errors import cause

_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

# Resources whose object names must be DNS-1123 labels rather than subdomains.
LABEL_NAMED = frozenset({("", "namespaces"), ("", "services")})


def dns1123_label_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_RE.fullmatch(value):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
            "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    return errors


def dns1123_subdomain_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.fullmatch(value):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """Label/annotation keys and finalizer names: `[prefix/]name`."""
    prefix, _, name = value.rpartition("/")
    errors: list[str] = []
    if "/" in value and not prefix:
        errors.append("prefix part must be non-empty")
    if prefix:
        errors += [f"prefix part {e}" for e in dns1123_subdomain_errors(prefix)]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_RE.fullmatch(name):
        errors.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )
    return errors


def name_errors(resource: tuple[str, str], name: str) -> list[str]:
    return dns1123_label_errors(name) if resource in LABEL_NAMED else dns1123_subdomain_errors(name)


def metadata_causes(meta: Mapping[str, Any]) -> list[dict[str, str]]:
    """Label, annotation and finalizer causes (names are checked separately, by resource)."""
    causes: list[dict[str, str]] = []
    labels = meta.get("labels") or {}
    if not isinstance(labels, Mapping):
        return [cause("metadata.labels", "Invalid value: must be a map of strings")]
    for key, value in labels.items():
        for error in qualified_name_errors(key):
            causes.append(cause("metadata.labels", f'Invalid value: "{key}": {error}'))
        if not isinstance(value, str):
            causes.append(cause(f"metadata.labels[{key}]", "Invalid value: label values must be strings"))
        elif len(value) > 63 or not _LABEL_VALUE_RE.fullmatch(value):
            causes.append(
                cause(
                    "metadata.labels",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist of alphanumeric '
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        return [*causes, cause("metadata.annotations", "Invalid value: must be a map of strings")]
    for key, value in annotations.items():
        for error in qualified_name_errors(key):
            causes.append(cause("metadata.annotations", f'Invalid value: "{key}": {error}'))
        if not isinstance(value, str):
            causes.append(
                cause(f"metadata.annotations[{key}]", "Invalid value: annotation values must be strings")
            )
    size = sum(len(k) + len(v) for k, v in annotations.items() if isinstance(v, str))
    if size > 256 * 1024:
        causes.append(
            cause("metadata.annotations", "Too long: must have at most 262144 bytes", "FieldValueTooLong")
        )
    for index, finalizer in enumerate(meta.get("finalizers") or []):
        if not isinstance(finalizer, str):
            causes.append(cause(f"metadata.finalizers[{index}]", "Invalid value: must be a string"))
            continue
        for error in qualified_name_errors(finalizer):
            causes.append(cause(f"metadata.finalizers[{index}]", f'Invalid value: "{finalizer}": {error}'))
    return causes
