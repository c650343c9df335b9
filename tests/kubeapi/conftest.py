"""Fixtures for the test API server's own tests (the server fixtures come from tests.support.kubeapi): a small CRD."""

from __future__ import annotations

from typing import Any

import pytest

GROUP = "example.proxnix.io"


def widget_crd(status_subresource: bool = True) -> dict[str, Any]:
    """A tiny namespaced CRD `widgets.example.proxnix.io` with printer columns, a schema and (optionally) /status."""
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "additionalPrinterColumns": [
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": "A widget for tests.",
                "properties": {
                    "spec": {
                        "type": "object",
                        "description": "What the widget should be.",
                        "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "description": "How big."},
                            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    },
                    "status": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {
                            "conditions": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
                                },
                            }
                        },
                    },
                },
            }
        },
    }
    if status_subresource:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
                "shortNames": ["wdg"],
                "categories": ["gadgets"],
            },
            "versions": [version],
        },
    }


def widget(name: str, size: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }


WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"


@pytest.fixture
def widgets_api(kubeapi: Any) -> Any:
    """The in-thread server with the widget CRD installed."""
    kubeapi.install_crds(widget_crd())
    return kubeapi
