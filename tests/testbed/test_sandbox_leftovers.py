"""A sandbox that was killed (not stopped) leaves its servers running; the next start stops them, and only them:
real processes, one that names the folder as the sandbox's own would, one a user started there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from proxnix_testbed.sandbox import _stop_leftovers


def test_the_next_start_stops_what_a_killed_sandbox_left_and_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / ".sandbox"
    (folder / "fleet").mkdir(parents=True)
    sleeper = "import sys, time; time.sleep(120)"
    # as the operator runs: `python -m proxnix.cli operator ... --state-dir <folder>/state`
    left = subprocess.Popen([sys.executable, "-c", sleeper, "proxnix.cli", "--state-dir", f"{folder}/state"])
    # as the webhook sidecar runs: nothing of the folder in argv, its KUBECONFIG in it
    sidecar = subprocess.Popen(
        [sys.executable, "-c", sleeper, "proxnix.cli", "webhook"],
        env={"KUBECONFIG": f"{folder}/webhook.kubeconfig"},
    )
    # the git server's sshd, which retitles itself
    server = subprocess.Popen(
        [
            "bash",
            "-c",
            f'exec -a "sshd: /usr/sbin/sshd -D -e -f {folder}/git/sshd_config [listener]" sleep 120',
        ]
    )
    # the user's editor on a file of the working copy, with the sandbox's KUBECONFIG exported in its shell
    user = subprocess.Popen(
        [sys.executable, "-c", sleeper, f"{folder}/fleet/vms.nix"], env={"KUBECONFIG": f"{folder}/kubeconfig"}
    )
    try:
        assert _stop_leftovers(folder) == 3
        assert left.wait(10) != 0
        assert sidecar.wait(10) != 0
        assert server.wait(10) != 0
        assert user.poll() is None
    finally:
        for proc in (left, sidecar, server, user):
            proc.kill()
            proc.wait(10)
