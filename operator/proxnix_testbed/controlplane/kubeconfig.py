"""Kubeconfig files for the control plane: the admin's (client certificate) and one per ServiceAccount (a token)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

CLUSTER = "proxnix-testbed"


def _config(server: str, ca: Path, user: dict[str, str], user_name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [
            {"name": user_name, "context": {"cluster": CLUSTER, "user": user_name, "namespace": namespace}}
        ],
        "current-context": user_name,
        "preferences": {},
    }


def _write(path: Path, config: dict[str, Any]) -> Path:
    """Write atomically with mode 0600 (a kubeconfig holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as file:
        yaml.safe_dump(config, file, sort_keys=False)
    os.replace(tmp, path)
    return path


def write_cert_kubeconfig(
    path: Path, server: str, ca: Path, cert: Path, key: Path, user_name: str, namespace: str = "default"
) -> Path:
    """A kubeconfig authenticating with a client certificate."""
    user = {"client-certificate": str(cert), "client-key": str(key)}
    return _write(path, _config(server, ca, user, user_name, namespace))


def write_token_kubeconfig(
    path: Path, server: str, ca: Path, token: str, user_name: str, namespace: str = "default"
) -> Path:
    """A kubeconfig authenticating with a bearer token (a ServiceAccount's, from the TokenRequest API)."""
    return _write(path, _config(server, ca, {"token": token}, user_name, namespace))
