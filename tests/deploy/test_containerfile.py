"""The Containerfile checked against the project, since no container engine runs here: every COPY source exists, the
entry point and default command are `proxnix` subcommands, the Debian packages come from hack/packages/runtime.txt
(the list hack/setup.sh installs too), and that list provides every program the operator runs."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from proxnix.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
RUNTIME_LIST = "hack/packages/runtime.txt"
# The programs the operator starts at run time (git and nix for GitRepos, ssh for git over SSH, qemu-img to check
# images before they are published to the cache).
RUNTIME_PROGRAMS = ("git", "nix", "ssh", "qemu-img")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def runtime_packages() -> list[str]:
    lines = (ROOT / RUNTIME_LIST).read_text().splitlines()
    return [pkg for line in lines if (pkg := line.split("#", 1)[0].strip())]


def test_base_is_pinned_by_digest() -> None:
    (base,) = [rest for word, rest in instructions() if word == "ARG" and rest.startswith("BASE=")]
    assert re.fullmatch(r"BASE=[a-z0-9./-]+:[a-z0-9.-]+@sha256:[0-9a-f]{64}", base)
    assert all(rest.split()[0] == "${BASE}" for word, rest in instructions() if word == "FROM")


def test_every_copy_source_exists() -> None:
    copies = [shlex.split(rest) for word, rest in instructions() if word == "COPY"]
    local = [args for args in copies if not any(a.startswith("--from=") for a in args)]
    assert local, "the Containerfile copies nothing from the project"
    for args in local:
        for source in args[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_entry_point_and_command_are_proxnix_subcommands() -> None:
    found = dict(instructions())
    assert json.loads(found["ENTRYPOINT"]) == ["proxnix"]
    command = json.loads(found["CMD"])
    assert command[0] in SUBCOMMANDS
    # The package really provides the `proxnix` console script the entry point names.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^proxnix = "proxnix\.cli:main"$', pyproject, re.MULTILINE)


def test_packages_come_from_the_shared_list() -> None:
    """The image and hack/setup.sh install the same runtime list; the image names no other Debian package than the
    Python it runs on."""
    steps = instructions()
    assert ("COPY", f"{RUNTIME_LIST} /usr/share/proxnix/runtime-packages.txt") in steps
    install = [rest for word, rest in steps if word == "RUN" and "runtime-packages.txt" in rest]
    assert install
    assert "apt-get install" in install[0]
    extra = install[0].split("--no-install-recommends", 1)[1].split("&&", 1)[0].split()
    assert set(extra) <= {"python3", "python3-venv"}
    assert RUNTIME_LIST in (ROOT / "hack/setup.sh").read_text()


@pytest.mark.parametrize("program", RUNTIME_PROGRAMS)
def test_runtime_list_provides_each_program_the_operator_runs(program: str) -> None:
    path = shutil.which(program)
    assert path, f"{program} is not installed here: hack/setup.sh installs {RUNTIME_LIST}"
    owner = subprocess.run(
        ["dpkg", "-S", str(Path(path).resolve())], capture_output=True, text=True, check=False
    )
    if owner.returncode != 0:  # e.g. /usr/bin/nix -> a path dpkg knows by its unresolved name
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=True)
    package = owner.stdout.split(":", 1)[0]
    assert package in runtime_packages(), f"{program} comes from {package}, which {RUNTIME_LIST} lacks"
