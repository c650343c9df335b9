"""Kubeconfig files pointing kubectl, kopf and the kubernetes client at a test API server (plain http, no auth)."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any

import yaml

CONTEXT = "proxnix-testbed"


def kubeconfig(url: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT, "user": {"token": "testbed"}}],
        "contexts": [
            {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(path: str | os.PathLike[str], url: str, namespace: str = "default") -> pathlib.Path:
    """Write (atomically, mode 0600) a kubeconfig for `url`; returns its path."""
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as file:
        yaml.safe_dump(kubeconfig(url, namespace), file, sort_keys=False)
    os.replace(tmp, target)
    return target
