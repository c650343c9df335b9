"""The user's side of a GitRepo in the sandbox, for end-to-end tests and benches: a working copy of the fleet
repository on the sandbox's git server (its post-receive hook → the webhook sidecar), commits pushed with real git,
and waits on the GitRepo's status (fetched, Ready at a revision).

`open_fleet(sb, workdir)` creates the repository with the test flake (tests/fixtures/flakes, variant `fleet`:
web01, web02 protected on pve1, db01 with deletionPolicy Retain on pve2), and pushes it; `Fleet.apply_gitrepo(**spec)`
applies the GitRepo and its Secrets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxnix_testbed.gitserver import GitServer
from proxnix_testbed.sandbox import Sandbox, ready_at
from tests.support.flakes import DEFAULT_LABELS, FLAKES, write_flake, write_labels
from tests.support.gitwork import WorkingCopy
from tests.support.observe import condition, node_config

HOOK_SECRET = b"e2e-push-secret"
FLEET = {"web01": ("pve1", 100), "web02": ("pve1", 101), "db01": ("pve2", 110)}
BUSY_REASONS = frozenset({"Fetching", "Evaluating", "Building"})


def vms_variant(name: str) -> str:
    """The text of vms variant `name` (tests/fixtures/flakes/vms/<name>.nix)."""
    return (FLAKES / "vms" / f"{name}.nix").read_text()


@dataclass
class Fleet:
    """A working copy of the fleet repository, and the sandbox the pushes land in."""

    sb: Sandbox
    work: WorkingCopy
    server: GitServer
    name: str = "fleet"
    timings: dict[str, float] = field(default_factory=dict)

    def push(self, message: str, vms: str | None = None, **labels: str) -> str:
        """Commit (vms.nix from a variant or as given, image labels) and push; returns the new head."""
        if vms is not None:
            (self.work.path / "vms.nix").write_text(vms)
        if labels:
            write_labels(self.work.path, {**DEFAULT_LABELS, **labels})
        head = self.work.commit(message)
        pushed = self.work.push()
        assert "-> 202" in pushed, pushed  # the sidecar accepted the hook's delivery
        return head

    def apply_gitrepo(self, **spec: Any) -> None:
        """Apply GitRepo `fleet` following main over SSH (defaultNode pve1, polling only hourly) plus `spec`."""
        self.sb.apply(
            self.sb.gitrepo_manifest(self.name, HOOK_SECRET, defaultNode="pve1", interval="1h", **spec)
        )

    def gitrepo(self) -> dict[str, Any]:
        found = self.sb.get("gitrepo", self.name)
        assert found is not None
        return found

    def wait_fetched(self, head: str, timeout: float = 60) -> dict[str, Any]:
        """The GitRepo after a reconcile of `head` finished (Reconciling False, or a problem reported)."""

        def done() -> dict[str, Any] | None:
            repo = self.gitrepo()
            fetched = (repo.get("status") or {}).get("lastFetchedRevision") == head
            busy = condition(repo, "Reconciling").get("reason") in BUSY_REASONS
            return repo if fetched and not busy else None

        found: dict[str, Any] = self.sb.wait_for(done, timeout, f"GitRepo fetched {head[:12]}")
        return found

    def wait_ready(self, head: str, timeout: float = 120) -> dict[str, Any]:
        """The GitRepo Ready for `head` (applied, every ProxmoxVM Ready for it)."""

        def ready() -> dict[str, Any] | None:
            repo = self.gitrepo()
            return repo if ready_at(repo, head) else None

        found: dict[str, Any] = self.sb.wait_for(ready, timeout, f"GitRepo Ready at {head[:12]}")
        return found

    def configs(self) -> dict[str, dict[str, str] | None]:
        """`qm config` of each fleet VM on its node (None: not there)."""
        return {name: node_config(self.sb, node, vmid) for name, (node, vmid) in FLEET.items()}

    def vm_specs(self) -> dict[str, Any]:
        return {name: (self.sb.get("proxmoxvm", name) or {}).get("spec") for name in FLEET}

    def reuse_ssh_connection(self, folder: Path) -> None:
        """Make the working copy's pushes share one SSH connection (a ControlMaster socket in `folder`, kept for a
        minute): a push then costs git and the hook, not a key exchange, so a burst can be pushed quickly."""
        mux = f" -o ControlMaster=auto -o ControlPath={folder}/cm-%C -o ControlPersist=60"
        self.work.env["GIT_SSH_COMMAND"] = self.sb.git.ssh_command() + mux if self.sb.git else ""

    def vms_text(self) -> str:
        """vms.nix as last committed."""
        return (self.work.path / "vms.nix").read_text()

    def labelled_vms(self) -> list[dict[str, Any]]:
        """The namespace's ProxmoxVMs labelled with this GitRepo (owned, or orphans it may adopt)."""
        out = self.sb.kubectl("get", "proxmoxvms", "-l", f"proxnix.io/gitrepo={self.name}", "-o", "json").out
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items


def with_memory(vms: str, name: str, mib: int) -> str:
    """vms.nix text with VM `name`'s memory_mb set to `mib`."""
    start = vms.index(f"  {name} = {{")
    at = vms.index("memory_mb = ", start)
    end = vms.index(";", at)
    return vms[:at] + f"memory_mb = {mib}" + vms[end:]


def nix_builds(under: Path) -> list[int]:
    """PIDs of the `nix build` processes running on this machine for a flake checked out under `under` (a
    sandbox's folder: other sandboxes' builds are not counted)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        mentioned = any(str(under).encode() in arg for arg in argv)
        if argv[0].endswith(b"nix") and argv[1:2] == [b"build"] and mentioned:
            pids.append(int(pid))
    return pids


def open_fleet(sb: Sandbox, workdir: Path, name: str = "fleet") -> Fleet:
    """Repository `name` on the sandbox's git server with the test fleet's first commit pushed (the webhook
    sidecar started if needed)."""
    url = sb.create_fleet_repo(name, HOOK_SECRET)
    assert sb.git is not None
    work = WorkingCopy(workdir, url, sb.git.ssh_command())
    write_flake(work.path, "fleet")
    work.commit("fleet: web01, web02, db01")
    work.push()
    return Fleet(sb, work, sb.git, name)


@contextmanager
def applied_fleet(sb: Sandbox, workdir: Path, **spec: Any) -> Iterator[Fleet]:
    """`open_fleet`, GitRepo `fleet` applied (with `spec`) and Ready at the first commit; the webhook sidecar
    stopped afterwards."""
    try:
        fleet = open_fleet(sb, workdir)
        fleet.apply_gitrepo(**spec)
        fleet.wait_ready(fleet.work.git("rev-parse", "HEAD"), 180)
        yield fleet
    finally:
        sb.stop_webhook()
