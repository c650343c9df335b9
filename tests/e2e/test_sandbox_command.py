"""The README's main command as a user runs it: `python -m proxnix_testbed.sandbox` brings up the whole product (nodes,
control plane, operator, webhook sidecar, git server with the example fleet, the GitRepo following it); the test
then follows the instructions it printed — kubectl, the working copy, the edit, `git commit`, `git push`, the watch,
`qm config` on the node, the clone — and finally stops it with SIGTERM: it exits 0 and leaves no process behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# A loaded 2-core machine: the control plane, two nodes, the operator, then a cold nix build of the example's images.
START_TIMEOUT = 480
FOLLOW_TIMEOUT = 120
COMMAND = [sys.executable, "-m", "proxnix_testbed.sandbox"]
# As on a fresh machine: no global git configuration, so no git identity (the sandbox sets one in the working copy).
FRESH_GIT = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


class Output:
    """The command's stdout+stderr, read line by line as it prints (a reader thread)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(predicate(line) for line in list(self.lines)):
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"the sandbox exited ({self.proc.returncode}) before that:\n{self.text}")
            if time.monotonic() > deadline:
                pytest.fail(f"no such line after {timeout} s:\n{self.text}")
            time.sleep(0.2)

    def block(self, header: str) -> list[str]:
        """The indented command lines printed under `header` (up to the next blank line), indentation removed."""
        start = self.lines.index(header) + 1
        block = []
        for line in self.lines[start:]:
            if not line.startswith("  "):
                break
            block.append(line[2:])
        return block


def bash(script: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run printed commands as the user's shell does (without the test's KUBECONFIG or git settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "GIT_"))} | FRESH_GIT
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def leftovers(sandbox_dir: Path) -> list[str]:
    """Processes that still name the sandbox's folder in their command line or environment (sshd, etcd,
    kube-apiserver, the operator, the webhook sidecar, ...)."""
    found = []
    needle = str(sandbox_dir).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if needle in cmdline or needle in (proc / "environ").read_bytes():
                found.append(proc.name + ": " + cmdline.replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise


def test_the_main_command_runs_the_example_fleet_and_a_printed_git_push_changes_a_vm(tmp_path: Path) -> None:
    sandbox_dir = tmp_path / "sb"
    proc = subprocess.Popen(
        [*COMMAND, "--dir", str(sandbox_dir)],
        env={**os.environ, **FRESH_GIT},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    try:
        out.wait_for_line(lambda line: line.startswith("sandbox: running"), START_TIMEOUT)
        assert re.search(r"GitRepo fleet Ready, its 3 VMs Running [\d.]+ s after the push", out.text), (
            out.text
        )

        steps = out.block("Try it in another shell:")
        export = steps[0]
        assert export.startswith("export KUBECONFIG=")
        watch = next(
            i for i, step in enumerate(steps) if step.startswith("kubectl get proxmoxvms") and " -w" in step
        )
        on_node = steps[watch + 1]
        assert on_node.startswith("pvesim ssh ")
        edit = next(step for step in steps if step.startswith("sed -i "))
        before, after = re.findall(r"memory_mb = (\d+);", edit)
        work = Path(next(step for step in steps if step.startswith("cd ")).split()[1])

        def memory_on_node() -> str:
            shown = bash(f"{export}\n{on_node}", tmp_path)
            assert shown.returncode == 0, shown.stderr
            return re.findall(r"^memory: (\d+)$", shown.stdout, re.MULTILINE)[0]

        assert memory_on_node() == before

        # Everything up to the watch: kubectl, cd into the working copy, the edit, commit, push.
        followed = bash("\n".join(steps[:watch]), tmp_path)
        assert followed.returncode == 0, followed.stdout + followed.stderr
        assert re.search(r"^gitrepo\.proxnix\.io/fleet\s", followed.stdout, re.MULTILINE), (
            followed.stdout
        )  # kubectl get gitrepos
        assert re.search(r"remote: proxnix webhook: refs/heads/main \w+ -> 202", followed.stderr), (
            followed.stderr
        )

        start = time.monotonic()
        while memory_on_node() != after:
            assert time.monotonic() - start < FOLLOW_TIMEOUT, f"memory still not {after} on the node"
            time.sleep(0.5)

        # The watch shows the VMs with their MEMORY column (it runs until stopped).
        watched = bash(f"{export}\ntimeout 5 {steps[watch].split('#')[0]} || test $? -eq 124", tmp_path)
        assert watched.returncode == 0, watched.stderr
        assert "MEMORY" in watched.stdout.splitlines()[0]
        assert re.search(rf"^web01\s.*\s{after}\s", watched.stdout, re.MULTILINE), watched.stdout

        # The clone command gives the user the commit just pushed.
        clone = out.block("Or make a clone of your own:")[0]
        cloned = bash(clone, tmp_path)
        assert cloned.returncode == 0, cloned.stderr
        pushed = bash("git rev-parse HEAD", work).stdout
        assert bash("git rev-parse HEAD", tmp_path / "my-fleet").stdout == pushed
    finally:
        rc = stop(proc)
    assert rc == 0, out.text
    assert out.lines[-1] == "sandbox: stopped", out.text
    assert not list((sandbox_dir / "pvesim" / "nodes").glob("*/sshd.pid"))
    assert not leftovers(sandbox_dir)


def test_exit_when_ready_prints_the_running_fleet_and_stops_everything(tmp_path: Path) -> None:
    sandbox_dir = tmp_path / "sb"
    result = subprocess.run(
        [*COMMAND, "--dir", str(sandbox_dir), "--exit-when-ready"],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("proxmoxvm.proxnix.io/")]
    assert sorted(row.split()[0].split("/")[1] for row in rows) == ["db01", "web01", "web02"]
    assert all(" Running " in row and " True " in row for row in rows), rows
    assert re.search(r"^gitrepo\.proxnix\.io/fleet\s.*\sTrue\s", result.stdout, re.MULTILINE), result.stdout
    assert not list((sandbox_dir / "pvesim" / "nodes").glob("*/sshd.pid"))
    assert not leftovers(sandbox_dir)
