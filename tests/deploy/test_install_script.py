"""hack/install-k3s.sh cannot run here (it installs a system service); its dry run and its shell are checked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from proxnix_testbed.controlplane.binaries import kubectl_binary

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "install-k3s.sh"


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    """The script's dry run, with the kubectl matching the server (from the venv) on PATH."""
    env = {**os.environ, "PATH": f"{Path(kubectl_binary()).parent}:{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_dry_run_prints_every_step_and_changes_nothing() -> None:
    out = dry_run()
    assert out.returncode == 0, out.stderr
    steps = [line for line in out.stdout.splitlines() if line.startswith("==> ")]
    assert [s.split()[1] for s in steps] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert "INSTALL_K3S_VERSION=v1.36.2+k3s1" in out.stdout
    assert f"apply --server-side -k {ROOT}/manifests" in out.stdout
    assert f"apply --server-side -k {ROOT}/manifests/crds" in out.stdout
    assert "rollout status statefulset/proxnix" in out.stdout


def test_dry_run_with_an_image_applies_an_overlay_that_names_it() -> None:
    out = dry_run("--image", "registry.example/proxnix:1.2.3")
    assert out.returncode == 0, out.stderr
    assert "with image registry.example/proxnix:1.2.3" in out.stdout
    # kustomize rendered the overlay the script wrote: every container runs that image, and no other
    deployed = [line.split(": ", 1)[1] for line in out.stdout.splitlines() if "would deploy image: " in line]
    assert deployed == ["registry.example/proxnix:1.2.3"], out.stdout


def test_bad_arguments_exit_2() -> None:
    assert dry_run("--no-such-option").returncode == 2
    assert dry_run("--overlay", "/nonexistent").returncode == 2


def test_shell_scripts_are_shellcheck_clean() -> None:
    scripts = sorted(str(p) for p in (ROOT / "hack").glob("*.sh"))
    out = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout
