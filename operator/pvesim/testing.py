"""Helpers for tests that drive a simulated cluster over real SSH (no pytest dependency; fixtures live in the
tests' conftest files). Never imported by the simulator itself.

    with running_cluster(tmp_path, nodes=2, settings={"lock_timeout": 1}) as cluster:
        result = cluster.node("pve1").run("qm list")
        assert result.rc == 0, result.err
        assert cluster.calls("pve1")[-1].argv == ("qm", "list")

`SshNode.run` uses the real `ssh` client with host-key checking on; by default it multiplexes sessions over one
master connection per node (ControlMaster) to keep tests fast; `mux=False` opens a fresh connection.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvesim import calllog, control, faults
from pvesim.control import ClusterInfo, NodeInfo
from pvesim.layout import Layout


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


class SshNode:
    def __init__(self, info: NodeInfo, control_dir: Path) -> None:
        self.info = info
        self.name = info.name
        self._control_path = str(control_dir / f"{info.name}")
        self._master_lock = threading.Lock()

    def _ensure_master(self) -> None:
        """Start the node's master connection (no session, so nothing in the node's call log) unless it runs.
        Without this, concurrent first calls race to become the master and the losers print "ControlSocket ...
        already exists, disabling multiplexing" on stderr, which is not the node's output."""
        with self._master_lock:
            if os.path.exists(self._control_path):
                return
            master = [
                "ssh", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                "-o", "ControlMaster=yes", "-o", f"ControlPath={self._control_path}",
                "-o", "ControlPersist=120", "-N", "-f", *self.info.ssh_args(),
            ]  # fmt: skip
            subprocess.run(
                master,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the backgrounded master keeps its output open: no pipes here
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=20,
            )  # on failure the call itself reports the error

    def ssh_command(self, command: str, mux: bool = True) -> list[str]:
        options = ["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]
        if mux:
            self._ensure_master()
            options += [
                "-o",
                "ControlMaster=auto",
                "-o",
                f"ControlPath={self._control_path}",
                "-o",
                "ControlPersist=120",
            ]
        return ["ssh", *options, *self.info.ssh_args(), command]

    def run(self, command: str, stdin: str | None = None, timeout: float = 60.0, mux: bool = True) -> Result:
        proc = subprocess.run(
            self.ssh_command(command, mux),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, command: str, stdin: str | None = None) -> str:
        """Run a command that must succeed (exit 0); return its stdout."""
        result = self.run(command, stdin)
        if result.rc != 0:
            raise AssertionError(f"{command!r} on {self.name} failed with rc={result.rc}: {result.err}")
        return result.out

    def fails(self, command: str, rc: int | None = None) -> Result:
        """Run a command that must fail (with exit code `rc` if given)."""
        result = self.run(command)
        if result.rc == 0 or (rc is not None and result.rc != rc):
            raise AssertionError(f"{command!r} on {self.name}: expected rc={rc or 'non-zero'}, got {result}")
        return result

    def popen(self, command: str, mux: bool = True) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.ssh_command(command, mux),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def sftp_put(self, local: str | os.PathLike[str], remote: str) -> Result:
        args = [
            "sftp", "-b", "-",
            "-i", self.info.identityFile,
            "-o", "StrictHostKeyChecking=yes",
            "-o", f'UserKnownHostsFile="{self.info.knownHostsFile}"',
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            "-P", str(self.info.port),
            f"{self.info.user}@{self.info.host}",
        ]  # fmt: skip
        proc = subprocess.run(
            args, input=f"put {local} {remote}\n", capture_output=True, text=True, check=False
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def close(self) -> None:
        if os.path.exists(self._control_path):
            subprocess.run(
                ["ssh", "-o", f"ControlPath={self._control_path}", "-O", "exit", "pvesim"],
                capture_output=True,
                check=False,
                timeout=10,
            )


class SimCluster:
    """A running simulated cluster and SSH access to its nodes."""

    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        self.dir = Path(info.dir)
        self.layout = Layout(self.dir)
        self._control_dir = Path(tempfile.mkdtemp(prefix="pvesim-cm-"))
        self.nodes = {n.name: SshNode(n, self._control_dir) for n in info.nodes}

    def node(self, name: str) -> SshNode:
        return self.nodes[name]

    def calls(self, node: str | None = None) -> list[calllog.Call]:
        return calllog.read(self.dir, node)

    def sessions(self, node: str | None = None) -> list[calllog.Session]:
        return calllog.read_sessions(self.dir, node)

    def add_faults(self, spec: str, node: str | None = None) -> None:
        control.add_faults(self.dir, spec, node)

    def clear_faults(self, node: str | None = None) -> None:
        control.clear_faults(self.dir, node)

    def tune(self, node: str | None = None, **values: Any) -> None:
        control.tune(self.dir, node, **values)

    def reset(self) -> None:
        """Empty the cluster (see `pvesim.control.reset`); nodes that were down come back."""
        for name, node in self.nodes.items():
            if faults.load(self.layout, name).down:
                node.close()
        control.reset(self.dir)

    def close_connections(self) -> None:
        for node in self.nodes.values():
            node.close()

    def close(self) -> None:
        self.close_connections()
        shutil.rmtree(self._control_dir, ignore_errors=True)


@contextmanager
def running_cluster(state_dir: str | os.PathLike[str], nodes: int = 2, **kwargs: Any) -> Iterator[SimCluster]:
    """`pvesim up` in `state_dir` for the duration of the block, then `pvesim down`."""
    info = control.up(state_dir, nodes=nodes, **kwargs)
    cluster = SimCluster(info)
    try:
        yield cluster
    finally:
        cluster.close()
        control.down(state_dir)
