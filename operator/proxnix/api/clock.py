"""The one wall clock of proxnix: RFC 3339 UTC timestamps as Kubernetes writes them (`Z` suffix)."""

from __future__ import annotations

from datetime import UTC, datetime


def now_rfc3339(*, microseconds: bool = False) -> str:
    """The current UTC time in RFC 3339: second precision (condition and status times, as the API server writes
    them), or with `microseconds` where two stamps written within one second must differ (`requested-at`)."""
    now = datetime.now(UTC)
    if microseconds:
        return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")
