"""hack/install-k3s.sh cannot run here (it installs a system service); its dry run and its shell are checked."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "install-k3s.sh"


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_dry_run_prints_every_step_and_changes_nothing() -> None:
    out = dry_run()
    assert out.returncode == 0, out.stderr
    steps = [line for line in out.stdout.splitlines() if line.startswith("==> ")]
    assert [s.split()[1] for s in steps] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert "INSTALL_K3S_VERSION=v1.36.2+k3s1" in out.stdout
    assert f"apply --server-side -k {ROOT}/manifests" in out.stdout
    assert f"apply --server-side -k {ROOT}/crds" in out.stdout
    assert "rollout status statefulset/proxnix" in out.stdout


def test_dry_run_with_an_image_applies_an_overlay_that_names_it() -> None:
    out = dry_run("--image", "registry.example/proxnix:1.2.3")
    assert out.returncode == 0, out.stderr
    assert "with image registry.example/proxnix:1.2.3" in out.stdout


def test_bad_arguments_exit_2() -> None:
    assert dry_run("--no-such-option").returncode == 2
    assert dry_run("--overlay", "/nonexistent").returncode == 2


def test_shell_scripts_are_shellcheck_clean() -> None:
    scripts = sorted(str(p) for p in (ROOT / "hack").glob("*.sh"))
    out = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout
