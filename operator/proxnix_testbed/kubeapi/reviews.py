"""The create-only review APIs (`kubectl auth can-i`, `kubectl auth whoami`): the test API server has no
authentication or authorization, so every review answers "allowed" for an all-powerful test user."""

from __future__ import annotations

import copy
from typing import Any

from proxnix_testbed.kubeapi.registry import ResourceType

REVIEW_GROUPS = frozenset({"authorization.k8s.io", "authentication.k8s.io"})
USER = {"username": "testbed-admin", "groups": ["system:masters", "system:authenticated"]}


def is_review(rt: ResourceType) -> bool:
    return rt.group in REVIEW_GROUPS


def review(rt: ResourceType, body: Any) -> dict[str, Any]:
    """The answered review: the request echoed back with its status filled in."""
    result: dict[str, Any] = copy.deepcopy(body) if isinstance(body, dict) else {}
    result["apiVersion"], result["kind"] = rt.api_version, rt.kind
    result.setdefault("metadata", {})
    if rt.plural == "selfsubjectreviews":
        result["status"] = {"userInfo": USER}
    elif rt.plural == "tokenreviews":
        result["status"] = {"authenticated": True, "user": USER}
    elif rt.plural == "selfsubjectrulesreviews":
        result["status"] = {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    else:
        result["status"] = {"allowed": True, "reason": "the test API server does no authorization"}
    return result
