"""The sandbox's demo, as a user meets proxnix: the example fleet (`example_fleet/`: a flake in the users' format,
three VMs on pve1 and pve2, two images made by qemu-img, no nixpkgs) in repository `fleet` on the sandbox's git
server (its post-receive hook sends signed pushes to the webhook sidecar), the user's working copy of it, the
GitRepo (+ Secrets) following it, and the instructions for changing a VM by `git push`.

Used by `python -m proxnix_testbed.sandbox` (the README's main command): `publish_example_fleet` → `wait_running`
→ `instructions`.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from proxnix_testbed.sandbox import Sandbox, SandboxError, ready_at

EXAMPLE_FLEET = Path(__file__).resolve().parent / "example_fleet"
REPO = "fleet"
VMS = {"web01": ("pve1", 100), "web02": ("pve2", 101), "db01": ("pve2", 110)}
"""The example's VMs: name → (node, VMID), as vms.nix says."""
NODES = ("pve1", "pve2")
# The change the instructions make: web01's memory, on a line of vms.nix that says it once.
CHANGED_VM = "web01"
MEMORY_BEFORE, MEMORY_AFTER = 2048, 3072
# Who commits in the working copy when the machine has no git identity (a fresh machine's root has none).
SANDBOX_IDENTITY = {"user.name": "proxnix sandbox user", "user.email": "you@sandbox.invalid"}


@dataclass(frozen=True)
class Demo:
    """The published example: the repository's URL, the working copy, the commit pushed first."""

    url: str
    work: Path
    head: str
    ssh_command: str


def _git(work: Path, *args: str) -> str:
    # The working copy's own core.sshCommand must be what reaches the server (not one from the caller's environment).
    env = {key: value for key, value in os.environ.items() if key not in ("GIT_SSH_COMMAND", "GIT_SSH")}
    done = subprocess.run(["git", *args], cwd=work, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SandboxError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def edit_command() -> str:
    """The shell command (run in the working copy) that changes web01's memory in vms.nix."""
    return f"sed -i 's/memory_mb = {MEMORY_BEFORE};/memory_mb = {MEMORY_AFTER};/' vms.nix"


def publish_example_fleet(sb: Sandbox, work: Path) -> Demo:
    """Create repository `fleet` on the git server (started if needed; its hook → the webhook sidecar, started if
    needed), make `work` the user's working copy (origin = the repository over SSH, `core.sshCommand` with the
    sandbox's key and host key, a local git identity if the machine has none), commit the example fleet, push it and
    apply GitRepo `fleet` with its Secrets."""
    vms = (EXAMPLE_FLEET / "vms.nix").read_text()
    if vms.count(f"memory_mb = {MEMORY_BEFORE};") != 1:
        raise SandboxError(f"example_fleet/vms.nix must set memory_mb = {MEMORY_BEFORE} once ({CHANGED_VM})")
    hook_secret = secrets.token_hex(32).encode()
    url = sb.create_fleet_repo(REPO, hook_secret)
    assert sb.git is not None
    ssh_command = sb.git.ssh_command()
    work.mkdir(parents=True)
    _git(work, "init", "--quiet", "--initial-branch=main")
    _git(work, "config", "core.sshCommand", ssh_command)
    _git(work, "remote", "add", "origin", url)
    for key, value in SANDBOX_IDENTITY.items():
        if subprocess.run(["git", "config", key], cwd=work, capture_output=True, check=False).returncode != 0:
            _git(work, "config", key, value)
    for source in sorted(EXAMPLE_FLEET.glob("*.nix")):
        shutil.copyfile(source, work / source.name)
    _git(work, "add", "-A")
    _git(work, "commit", "--quiet", "-m", "The example fleet: web01 and web02 (image web), db01 (image db)")
    _git(work, "push", "--quiet", "--set-upstream", "origin", "main")
    head = _git(work, "rev-parse", "HEAD")
    sb.apply(sb.gitrepo_manifest(REPO, hook_secret, interval="10m"))
    return Demo(url=url, work=work, head=head, ssh_command=ssh_command)


def wait_running(sb: Sandbox, demo: Demo, timeout: float) -> None:
    """Until GitRepo `fleet` is Ready at the pushed commit and each of its VMs is Running."""

    def ready() -> bool:
        return ready_at(sb.get("gitrepo", REPO), demo.head)

    def running() -> bool:
        return all(
            (sb.get("proxmoxvm", name) or {}).get("status", {}).get("phase") == "Running" for name in VMS
        )

    sb.wait_for(ready, timeout, f"GitRepo {REPO} Ready at {demo.head[:12]}")
    sb.wait_for(running, timeout, f"the VMs of GitRepo {REPO} Running")


def instructions(sb: Sandbox, kubectl_dir: Path, demo: Demo | None) -> str:
    """What the user runs in another shell: kubectl against the sandbox and, with the demo, a VM changed by `git
    push` and watched as it follows. One command a line, each runnable as printed (the test runs them)."""
    node, vmid = VMS[CHANGED_VM]
    lines = [
        "Try it in another shell:",
        f"  export KUBECONFIG={shlex.quote(str(sb.kubeconfig))} PATH={shlex.quote(str(kubectl_dir))}:$PATH",
    ]
    if demo is None:
        lines.append("  kubectl get proxnix -o wide")
        return "\n".join(lines) + "\n"
    lines += [
        "  kubectl get gitrepos,proxmoxvms -o wide",
        f"  cd {shlex.quote(str(demo.work))}    # your working copy of the example fleet (flake.nix, vms.nix, image.nix)",
        f"  {edit_command()}    # {CHANGED_VM}: {MEMORY_BEFORE} → {MEMORY_AFTER} MiB",
        f"  git commit -qam '{CHANGED_VM}: {MEMORY_AFTER} MiB'",
        "  git push    # remote: proxnix webhook: refs/heads/main <commit> -> 202 (the sidecar marked GitRepo fleet)",
        f"  kubectl get proxmoxvms -o wide -w    # {CHANGED_VM}'s MEMORY follows in seconds; Ctrl-C ends the watch",
        f"  pvesim ssh --dir {shlex.quote(str(sb.sim_dir))} {node} qm config {vmid}    # {CHANGED_VM} on its node",
        "",
        "Or make a clone of your own:",
        f"  git clone -c core.sshCommand={shlex.quote(demo.ssh_command)} {demo.url} my-fleet",
    ]
    return "\n".join(lines) + "\n"
