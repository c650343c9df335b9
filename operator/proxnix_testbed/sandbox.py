"""The local sandbox: simulated Proxmox nodes (pvesim, real sshd) + the test Kubernetes API + `proxnix operator`,
wired together exactly as in a real deployment (the operator reads its nodes' SSH keys from Secrets and reaches
them over SSH with host-key checking).

Used two ways: `python -m proxnix_testbed.sandbox` (the README's main command: bring everything up, deploy a demo
VM, keep running until Ctrl-C) and, as the `Sandbox` class, by the end-to-end tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pvesim import control
from pvesim.control import ClusterInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_CRDS = REPO_ROOT / "crds"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
T = TypeVar("T")


class SandboxError(RuntimeError):
    """Something in the sandbox did not come up or did not behave in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until `predicate()` is truthy and return it; SandboxError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SandboxError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class SandboxConfig:
    """What to start."""

    dir: Path
    nodes: int = 2
    latency: float = 0.0
    namespace: str = "default"
    resync_interval: float = 30.0
    sim_settings: dict[str, Any] = field(default_factory=lambda: {"agent_delay": 1.0})
    standalone: bool = True


@dataclass
class Result:
    rc: int
    out: str
    err: str


class Sandbox:
    """A running sandbox. Start with `up()`, stop with `down()` (or use `running_sandbox`)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.dir = config.dir.resolve()
        self.sim_dir = self.dir / "pvesim"
        self.kubeconfig = self.dir / "kubeconfig"
        self.api_url = ""
        self.cluster: ClusterInfo | None = None
        self._api: subprocess.Popen[str] | None = None
        self.operator: subprocess.Popen[bytes] | None = None
        self.health_port = 0
        self._operator_runs = 0

    # --- environment ----------------------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.dir / "kube-cache")
        return env

    def up(self, *, operator: bool = True) -> None:
        """Start the API, the nodes, register them (Secret + ProxmoxNode each), and (optionally) the operator."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._start_api()
        self.cluster = control.up(
            self.sim_dir,
            nodes=self.config.nodes,
            latency=self.config.latency,
            settings=self.config.sim_settings,
        )
        self.apply(self.node_manifests())
        if operator:
            self.start_operator()

    def down(self) -> None:
        """Stop the operator, the nodes and the API (idempotent)."""
        self.stop_operator()
        if self.cluster is not None:
            control.down(self.sim_dir)
            self.cluster = None
        if self._api is not None:
            _terminate(self._api)
            self._api = None

    def _start_api(self) -> None:
        log = (self.dir / "kubeapi.log").open("w")
        self._api = subprocess.Popen(
            [
                sys.executable, "-m", "proxnix_testbed.kubeapi",
                "--port", "0",
                "--kubeconfig", str(self.kubeconfig),
                "--crds", str(REPO_CRDS),
                "--kopf-peering",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )  # fmt: skip
        log.close()
        assert self._api.stdout is not None
        ready, _, _ = select.select([self._api.stdout], [], [], 30)
        line = self._api.stdout.readline() if ready else ""
        if not line:
            raise SandboxError("the test API server did not start: " + (self.dir / "kubeapi.log").read_text())
        self.api_url = json.loads(line)["url"]

    # --- the operator ----------------------------------------------------------------------------------------------

    def start_operator(self, *extra: str) -> subprocess.Popen[bytes]:
        """Start `proxnix operator` against the sandbox's API; returns once its health endpoint answers."""
        if self.operator is not None and self.operator.poll() is None:
            raise SandboxError("the operator is already running")
        self._operator_runs += 1
        self.health_port = free_port()
        log = (self.dir / f"operator-{self._operator_runs}.log").open("wb")
        args = [
            sys.executable, "-m", "proxnix.cli", "operator",
            "--health-listen", f"127.0.0.1:{self.health_port}",
            "--resync-interval", str(self.config.resync_interval),
            "--namespace", self.config.namespace,
            "--image-root", str(self.image_dir),
        ]  # fmt: skip
        if self.config.standalone:
            args.append("--standalone")
        self.operator = subprocess.Popen([*args, *extra], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(self._healthy, 30, "the operator's /healthz")
        return self.operator

    def _healthy(self) -> bool:
        if self.operator is not None and self.operator.poll() is not None:
            raise SandboxError(
                f"the operator exited ({self.operator.returncode}):\n{self.operator_log()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as rsp:
                return bool(rsp.status == 200)
        except OSError:
            return False

    def stop_operator(self, *, kill: bool = False) -> int | None:
        """SIGTERM (or SIGKILL with `kill`) the operator; returns its exit code."""
        proc, self.operator = self.operator, None
        if proc is None:
            return None
        if kill:
            proc.kill()
            return proc.wait(10)
        return _terminate(proc)

    def operator_log(self) -> str:
        path = self.dir / f"operator-{self._operator_runs}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- Kubernetes ------------------------------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> Result:
        proc = subprocess.run(
            [KUBECTL, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and proc.returncode != 0:
            raise SandboxError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input=manifest)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result = self.kubectl("get", kind, name, "-n", self.config.namespace, "-o", "json", check=False)
        if result.rc != 0:
            if "NotFound" in result.err or "not found" in result.err:
                return None
            raise SandboxError(result.err)
        loaded: dict[str, Any] = json.loads(result.out)
        loaded.setdefault("status", {})
        return loaded

    def wait_for(self, predicate: Callable[[], T], timeout: float = 60, what: str = "a condition") -> T:
        def checked() -> T:
            if self.operator is not None and self.operator.poll() is not None:
                raise SandboxError(f"the operator exited:\n{self.operator_log()[-3000:]}")
            return predicate()

        try:
            return wait_for(checked, timeout, what, interval=0.2)
        except SandboxError as exc:
            raise SandboxError(f"{exc}\n--- operator log (tail) ---\n{self.operator_log()[-4000:]}") from None

    def node_manifests(self) -> str:
        """A Secret and a ProxmoxNode per simulated node, as a user would write them."""
        assert self.cluster is not None
        docs: list[dict[str, Any]] = []
        for node in self.cluster.nodes:
            key = Path(node.identityFile).read_text()
            known = Path(node.knownHostsFile).read_text()
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{node.name}-ssh", "namespace": self.config.namespace},
                "type": "Opaque",
                "stringData": {"ssh-privatekey": key, "known_hosts": known},
            }
            pnode = {
                "apiVersion": "proxnix.io/v1alpha1",
                "kind": "ProxmoxNode",
                "metadata": {"name": node.name, "namespace": self.config.namespace},
                "spec": {
                    "host": node.host,
                    "port": node.port,
                    "user": node.user,
                    "credentialsSecretRef": {"name": f"{node.name}-ssh"},
                    "probeInterval": f"{max(1, int(self.config.resync_interval))}s",
                },
            }
            docs += [secret, pnode]
        return yaml.safe_dump_all(docs, sort_keys=False)

    # --- the nodes -------------------------------------------------------------------------------------------------

    def ssh(self, node: str, command: str, timeout: float = 60) -> Result:
        """Run a command on a simulated node over real SSH (as an admin would on a real one)."""
        assert self.cluster is not None
        proc = subprocess.run(
            [
                "ssh",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                *self.cluster.node(node).ssh_args(),
                command,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def qm_calls(self, node: str | None = None) -> int:
        """How many qm/pvesh calls the nodes have run so far."""
        from pvesim import calllog

        return len(calllog.read(self.sim_dir, node))

    @property
    def image_dir(self) -> Path:
        """The folder of the sandbox's images: the operator's only image root (`--image-root`)."""
        return self.dir / "images"

    def make_image(self, name: str, size: str = "1G") -> Path:
        """A small real qcow2 image (virtual size `size`) with a little data in it."""
        path = self.image_dir / f"{name}.qcow2"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
            subprocess.run(
                ["qemu-io", "-c", f"write -P 0x{abs(hash(name)) % 200 + 1:02x} 0 64k", str(path)],
                capture_output=True,
                check=False,
            )
        return path


def _terminate(proc: subprocess.Popen[Any], timeout: float = 15) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout)


@contextmanager
def running_sandbox(config: SandboxConfig, *, operator: bool = True) -> Iterator[Sandbox]:
    sandbox = Sandbox(config)
    try:
        sandbox.up(operator=operator)
        yield sandbox
    finally:
        sandbox.down()


DEMO_VMS = (("web01", 100, "pve1"), ("db01", 101, "pve2"))


def _demo_manifest(sandbox: Sandbox, image: Path) -> str:
    assert sandbox.cluster is not None
    nodes = [n.name for n in sandbox.cluster.nodes]
    docs = [
        {
            "apiVersion": "proxnix.io/v1alpha1",
            "kind": "ProxmoxVM",
            "metadata": {"name": name, "namespace": sandbox.config.namespace},
            "spec": {
                "node": node if node in nodes else nodes[0],
                "vmid": vmid,
                "cores": 2,
                "memoryMiB": 1024,
                "disk": {"sizeGiB": 4},
                "image": {"source": str(image)},
                "tags": ["demo"],
            },
        }
        for name, vmid, node in DEMO_VMS
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    """`python -m proxnix_testbed.sandbox`: everything up, two demo VMs deployed, running until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m proxnix_testbed.sandbox", description=main.__doc__)
    parser.add_argument(
        "--dir", type=Path, default=REPO_ROOT / ".sandbox", help="state folder (default .sandbox)"
    )
    parser.add_argument("--nodes", type=int, default=2, help="simulated Proxmox nodes (default 2)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every qm/pvesh call")
    parser.add_argument("--no-demo", action="store_true", help="do not deploy the demo VMs")
    parser.add_argument(
        "--exit-when-ready", action="store_true", help="stop everything once the demo is Running"
    )
    args = parser.parse_args(argv)

    if args.dir.exists():
        with contextlib.suppress(Exception):  # a previous sandbox that is already gone
            control.down(args.dir / "pvesim")
        shutil.rmtree(args.dir)
    config = SandboxConfig(dir=args.dir, nodes=args.nodes, latency=args.latency, resync_interval=15.0)
    stop = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    with running_sandbox(config) as sb:
        print(f"sandbox: {args.nodes} simulated Proxmox nodes, test API at {sb.api_url}, operator running")
        if not args.no_demo:
            image = sb.make_image("nixos-demo", "2G")
            sb.apply(_demo_manifest(sb, image))
            print("sandbox: deployed the demo VMs; waiting until they run ...")
            started = time.monotonic()
            for name, _, _ in DEMO_VMS:
                sb.wait_for(
                    lambda name=name: (
                        (o := sb.get("proxmoxvm", name))  # type: ignore[misc]
                        and o["status"].get("phase") == "Running"
                        and o["status"].get("ipAddresses")
                    ),
                    120,
                    f"{name} Running",
                )
            print(f"sandbox: demo VMs Running after {time.monotonic() - started:.1f} s\n")
        print(sb.kubectl("get", "proxnix", "-n", config.namespace, "-o", "wide").out)
        print(f"Try:\n  export KUBECONFIG={sb.kubeconfig}\n  kubectl get proxmoxvms -o wide\n")
        print('  kubectl patch pvm web01 --type merge -p \'{"spec":{"memoryMiB":2048}}\'')
        print(f"  .venv/bin/pvesim ssh --dir {sb.sim_dir} pve1 qm list\n")
        if args.exit_when_ready:
            return 0
        print("sandbox: running; Ctrl-C stops everything.")
        try:
            while not stop:
                time.sleep(0.5)
                if sb.operator is not None and sb.operator.poll() is not None:
                    print("sandbox: the operator exited:\n" + sb.operator_log()[-3000:], file=sys.stderr)
                    return 1
        except KeyboardInterrupt:
            pass
        print("\nsandbox: stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
