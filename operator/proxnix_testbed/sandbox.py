"""The local sandbox: simulated Proxmox nodes (pvesim, real sshd) + a real Kubernetes control plane
(`proxnix_testbed.controlplane`) + `proxnix operator`, wired together exactly as in a real deployment: the CRDs and
manifests/base/rbac.yaml installed, the operator authenticated as its ServiceAccount, reading its nodes' SSH keys
from Secrets and reaching them over SSH with host-key checking. The user (kubectl, `Sandbox.kubectl`) is the admin.

Used two ways: `python -m proxnix_testbed.sandbox` (the README's main command: bring everything up with the git
server, the webhook sidecar and the example fleet of `proxnix_testbed.demo`, keep running until Ctrl-C) and, as the `Sandbox` class, by the end-to-end tests, which share one control plane
between sandboxes (`SandboxConfig.control_plane`); a sandbox clears what it made in its namespace when it stops.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
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

from proxnix_testbed.controlplane import identities
from proxnix_testbed.controlplane.binaries import REPO_ROOT, kubectl_binary, run_kubectl
from proxnix_testbed.controlplane.cluster import ControlPlane, free_port
from proxnix_testbed.controlplane.kubeconfig import write_cert_kubeconfig
from proxnix_testbed.gitserver import GitServer, WebhookTarget
from proxnix_testbed.nixconf import nix_config
from pvesim import control
from pvesim.control import ClusterInfo

REPO_CRDS = REPO_ROOT / "crds"
PEERING_MANIFEST = REPO_ROOT / "manifests" / "crds" / "kopf-peering.yaml"
T = TypeVar("T")
# What a sandbox clears from its namespace when it stops (finalizers first: no operator may be left to remove them).
_SANDBOX_RESOURCES = (
    *(("/apis/proxnix.io/v1alpha1", plural) for plural in ("proxmoxvms", "proxmoxnodes", "gitrepos")),
    ("/apis/kopf.dev/v1", "kopfpeerings"),
    ("/api/v1", "secrets"),
    ("/api/v1", "events"),
)


class SandboxError(RuntimeError):
    """Something in the sandbox did not come up or did not behave in time."""


__all__ = [
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "free_port",
    "is_ready",
    "ready_at",
    "running_sandbox",
    "wait_for",
]


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


def is_ready(obj: dict[str, Any] | None) -> bool:
    """Whether a proxnix object's Ready condition is True."""
    conditions = ((obj or {}).get("status") or {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def ready_at(gitrepo: dict[str, Any] | None, revision: str) -> bool:
    """Whether a GitRepo applied `revision` and is Ready (every ProxmoxVM it owns Ready for it)."""
    applied = ((gitrepo or {}).get("status") or {}).get("lastAppliedRevision") == revision
    return applied and is_ready(gitrepo)


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
    control_plane: ControlPlane | None = None
    """A running control plane to share (tests); None: the sandbox starts its own and stops it at the end."""


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
        self.operator_kubeconfig = self.dir / "operator.kubeconfig"
        self.api_url = ""
        self.cluster: ClusterInfo | None = None
        self.plane: ControlPlane | None = config.control_plane
        self._own_plane = config.control_plane is None
        self.operator: subprocess.Popen[bytes] | None = None
        self.webhook: subprocess.Popen[bytes] | None = None
        self.webhook_url = ""
        self.git: GitServer | None = None
        self.health_port = 0
        self.metrics_port = 0
        self._operator_runs = 0

    # --- environment ----------------------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """Environment of the user's tools (kubectl): the admin kubeconfig, defaulting to the sandbox's namespace."""
        return self._env(self.kubeconfig)

    @property
    def operator_env(self) -> dict[str, str]:
        """Environment of `proxnix operator`: the kubeconfig of ServiceAccount proxnix-operator, and the test nix
        settings (`proxnix_testbed.nixconf`: flakes on, no binary caches, no build sandbox) for the GitRepos."""
        env = self._env(self.operator_kubeconfig)
        env["NIX_CONFIG"] = nix_config()
        return env

    def _env(self, kubeconfig: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env["KUBECONFIG"] = str(kubeconfig)
        env["KUBECACHEDIR"] = str(self.dir / "kube-cache")
        return env

    def up(self, *, operator: bool = True) -> None:
        """Start (or join) the control plane, the nodes, register them (Secret + ProxmoxNode each), and
        (optionally) the operator."""
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
        """Stop the operator, the webhook sidecar, the git server and the nodes; clear the namespace of a shared
        control plane, or stop our own (idempotent). Every step runs even when an earlier one failed; the first
        failure is raised at the end."""
        with contextlib.ExitStack() as steps:  # runs its callbacks last-in first-out, each despite the others
            steps.callback(self._stop_plane)
            steps.callback(self._stop_nodes)
            steps.callback(self._stop_git)
            steps.callback(self.stop_webhook)
            steps.callback(self.stop_operator)

    def _stop_git(self) -> None:
        git, self.git = self.git, None
        if git is not None:
            git.stop()

    def _stop_nodes(self) -> None:
        if self.cluster is not None:
            self.cluster = None
            control.down(self.sim_dir)

    def _stop_plane(self) -> None:
        if self.plane is None:
            return
        if self._own_plane:
            plane, self.plane = self.plane, None
            plane.stop()
        elif self.plane.running():
            self._clear_namespace()

    def _start_api(self) -> None:
        if self.plane is None:
            self.plane = ControlPlane.start(self.dir / "controlplane")
        plane = self.plane
        plane.install(REPO_CRDS, PEERING_MANIFEST)
        identities.grant(plane, [self.config.namespace])
        self.api_url = plane.url
        pki = plane.pki
        write_cert_kubeconfig(
            self.kubeconfig, plane.url, pki.ca_cert, pki.admin.cert, pki.admin.key, "proxnix-admin",
            self.config.namespace,
        )  # fmt: skip
        identities.service_account_kubeconfig(
            plane, identities.OPERATOR, self.operator_kubeconfig, default_namespace=self.config.namespace
        )

    def _clear_namespace(self) -> None:
        """Remove what this sandbox (and its tests) made in its namespace of a shared control plane, so that the
        next sandbox finds it empty. The operator is stopped by now, so finalizers are removed first."""
        assert self.plane is not None
        plane, ns = self.plane, self.config.namespace
        for api, plural in _SANDBOX_RESOURCES:
            collection = f"{api}/namespaces/{ns}/{plural}"
            listed = plane.request("GET", collection)
            for item in (listed.body or {}).get("items", []) if listed.status == 200 else []:
                if item["metadata"].get("finalizers"):
                    plane.request(
                        "PATCH",
                        f"{collection}/{item['metadata']['name']}",
                        {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
            plane.request("DELETE", collection)

    # --- the operator ----------------------------------------------------------------------------------------------

    def start_operator(self, *extra: str) -> subprocess.Popen[bytes]:
        """Start `proxnix operator` against the sandbox's API; returns once its health endpoint answers."""
        if self.operator is not None and self.operator.poll() is None:
            raise SandboxError("the operator is already running")
        self._operator_runs += 1
        self.health_port = free_port()
        self.metrics_port = free_port()
        log = (self.dir / f"operator-{self._operator_runs}.log").open("wb")
        args = [
            sys.executable, "-m", "proxnix.cli", "operator",
            "--health-listen", f"127.0.0.1:{self.health_port}",
            "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
            "--resync-interval", str(self.config.resync_interval),
            "--namespace", self.config.namespace,
            "--image-root", str(self.image_dir),
            "--image-root", "/nix/store",  # the images GitRepos build
            "--state-dir", str(self.dir / "state"),
        ]  # fmt: skip
        if self.config.standalone:
            args.append("--standalone")
        self.operator = subprocess.Popen(
            [*args, *extra], env=self.operator_env, stdout=log, stderr=subprocess.STDOUT
        )
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

    # --- the webhook sidecar ---------------------------------------------------------------------------------------

    def start_webhook(self) -> str:
        """Start `proxnix webhook` as ServiceAccount proxnix-webhook on loopback (as the sidecar of the operator's
        pod); returns its `/hook` URL once `/readyz` answers."""
        if self.webhook is not None and self.webhook.poll() is None:
            raise SandboxError("the webhook sidecar is already running")
        assert self.plane is not None
        kubeconfig = identities.service_account_kubeconfig(
            self.plane, identities.WEBHOOK, self.dir / "webhook.kubeconfig",
            default_namespace=self.config.namespace,
        )  # fmt: skip
        port = free_port()
        log_path = self.dir / "webhook.log"
        log = log_path.open("ab")
        argv = [
            sys.executable, "-m", "proxnix.cli", "webhook", "--listen", f"127.0.0.1:{port}",
            "--namespace", self.config.namespace, "--miss-seconds", "0",
        ]  # fmt: skip
        self.webhook = proc = subprocess.Popen(
            argv, env={**self.env, "KUBECONFIG": str(kubeconfig)}, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

        def ready() -> bool:
            if proc.poll() is not None:
                raise SandboxError(f"the webhook sidecar exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as rsp:
                    return bool(rsp.status == 200)
            except OSError:
                return False

        wait_for(ready, 20, "the webhook sidecar's /readyz")
        self.webhook_url = f"http://127.0.0.1:{port}/hook"
        return self.webhook_url

    def stop_webhook(self) -> None:
        proc, self.webhook = self.webhook, None
        if proc is not None:
            _terminate(proc)

    # --- the git server --------------------------------------------------------------------------------------------

    def start_git_server(self) -> GitServer:
        """Start the sandbox's git server (sshd + git-shell on loopback, `proxnix_testbed.gitserver`)."""
        if self.git is None:
            self.git = GitServer.start(self.dir / "git")
        return self.git

    def create_fleet_repo(self, name: str, hook_secret: bytes) -> str:
        """A bare repository `name` on the git server whose post-receive hook sends signed pushes to the webhook
        sidecar (started if needed); returns its SSH URL."""
        server = self.start_git_server()
        url = self.webhook_url or self.start_webhook()
        server.create_repo(name, WebhookTarget(url=url, secret=hook_secret))
        return server.ssh_url(name)

    def gitrepo_manifest(self, name: str, hook_secret: bytes, **spec: Any) -> str:
        """A GitRepo following `main` of repository `name` on the git server over SSH, and its Secrets (`<name>-git`:
        the client key and the server's host key; `<name>-hook`: the webhook secret), as a user writes them."""
        assert self.git is not None, "start_git_server() first"
        ns = self.config.namespace

        def secret(secret_name: str, data: dict[str, bytes]) -> dict[str, Any]:
            encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
            meta = {"name": secret_name, "namespace": ns}
            return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": encoded}

        git_secret = {
            "identity": self.git.client_key.read_bytes(),
            "known_hosts": self.git.known_hosts.read_bytes(),
        }
        gitrepo = {
            "apiVersion": "proxnix.io/v1alpha1",
            "kind": "GitRepo",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "url": self.git.ssh_url(name),
                "ref": {"branch": "main"},
                "secretRef": {"name": f"{name}-git"},
                "webhook": {"secretRef": {"name": f"{name}-hook"}},
                **spec,
            },
        }
        docs = [secret(f"{name}-git", git_secret), secret(f"{name}-hook", {"token": hook_secret}), gitrepo]
        return yaml.safe_dump_all(docs, sort_keys=False)

    # --- Kubernetes ------------------------------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> Result:
        proc = run_kubectl(args, self.env, input=input)
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


def main(argv: list[str] | None = None) -> int:
    """`python -m proxnix_testbed.sandbox`: the whole product on this machine — simulated Proxmox nodes, the
    control plane, the operator, the webhook sidecar, a git server holding the example fleet (`proxnix_testbed.demo`)
    and the GitRepo following it — until Ctrl-C or SIGTERM; prints how to change a VM by `git push`."""
    import argparse

    from proxnix_testbed import demo

    parser = argparse.ArgumentParser(prog="python -m proxnix_testbed.sandbox", description=main.__doc__)
    parser.add_argument(
        "--dir", type=Path, default=REPO_ROOT / ".sandbox", help="state folder (default .sandbox)"
    )
    parser.add_argument("--nodes", type=int, default=2, help="simulated Proxmox nodes (default 2)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every qm/pvesh call")
    parser.add_argument(
        "--no-demo",
        action="store_true",
        help="no git server and no example fleet (nodes, API, operator only)",
    )
    parser.add_argument(
        "--exit-when-ready", action="store_true", help="stop everything once the example fleet runs"
    )
    args = parser.parse_args(argv)
    if not args.no_demo and args.nodes < len(demo.NODES):
        parser.error(
            f"the example fleet runs on {' and '.join(demo.NODES)}: use --nodes 2 or more, or --no-demo"
        )
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # each line as it happens, also into a pipe

    if args.dir.exists():
        with contextlib.suppress(Exception):  # a previous sandbox that is already gone
            control.down(args.dir / "pvesim")
        stopped = _stop_leftovers(args.dir)
        if stopped:
            print(f"sandbox: stopped {stopped} processes a previous sandbox in {args.dir} left running")
        shutil.rmtree(args.dir)
    config = SandboxConfig(dir=args.dir, nodes=args.nodes, latency=args.latency, resync_interval=15.0)

    # Ctrl-C, SIGTERM or a closed terminal interrupt what runs (start-up or the wait); stopping is never
    # interrupted, however it began (a signal, --exit-when-ready, an error), so nothing is left running.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def on_signal(signum: int, _frame: object) -> None:
        for stop_signal in stop_signals:
            signal.signal(stop_signal, signal.SIG_IGN)
        raise KeyboardInterrupt

    for stop_signal in stop_signals:
        signal.signal(stop_signal, on_signal)
    started = time.monotonic()
    sb = Sandbox(config)
    interrupted, rc = False, 0
    try:
        sb.up()
        rc = _serve(sb, args.nodes, args.no_demo, args.exit_when_ready, started)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for stop_signal in stop_signals:
            signal.signal(stop_signal, signal.SIG_IGN)
        sb.down()
    if interrupted:
        print("sandbox: stopped")
    return rc


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie has ended; its parent has yet to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


_SANDBOX_PROGRAMS = frozenset({"etcd", "kube-apiserver", "kube-controller-manager", "sshd"})


def _stop_leftovers(folder: Path, timeout: float = 10.0) -> int:
    """Stop what a sandbox that was killed (not stopped) left running: the processes whose command line names
    `folder` (etcd, the API server, the controller manager, sshd, the operator), and `proxnix` processes whose
    KUBECONFIG is in it (the webhook sidecar). A user's own programs (a shell, an editor, a watch) are left alone.
    Returns how many were stopped."""
    marker = str(folder.resolve()).encode()
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes()
            # argv[0], or the title a server gave itself (`sshd: /usr/sbin/sshd -D -f ... [listener]`)
            title = argv.split(b"\0", 1)[0].split(maxsplit=1)
            program = Path(title[0].decode(errors="replace").rstrip(":")).name if title else ""
            ours = program in _SANDBOX_PROGRAMS and marker in argv
            if b"proxnix.cli" in argv:
                env = (proc / "environ").read_bytes().split(b"\0")
                ours = marker in argv or any(var.startswith(b"KUBECONFIG=") and marker in var for var in env)
            if ours:
                found.append(int(proc.name))
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_running(pid) for pid in found):
        time.sleep(0.1)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(found)


def _serve(sb: Sandbox, nodes: int, no_demo: bool, exit_when_ready: bool, started: float) -> int:
    from proxnix_testbed import demo

    version = (
        json.loads(sb.kubectl("version", "-o", "json").out).get("serverVersion", {}).get("gitVersion", "?")
    )
    print(
        f"sandbox: {nodes} simulated Proxmox nodes, kube-apiserver {version} at {sb.api_url}, operator running "
        f"({time.monotonic() - started:.1f} s)"
    )
    published = None
    if not no_demo:
        published = demo.publish_example_fleet(sb, sb.dir / "fleet")
        assert sb.git is not None
        print(
            f"sandbox: git server ssh://127.0.0.1:{sb.git.port}, webhook sidecar {sb.webhook_url}; pushed the example "
            f"fleet ({published.head[:12]}) to {published.url} and applied GitRepo {demo.REPO}; waiting until its "
            "VMs run ..."
        )
        pushed = time.monotonic()
        demo.wait_running(sb, published, 300)
        print(
            f"sandbox: GitRepo {demo.REPO} Ready, its {len(demo.VMS)} VMs Running "
            f"{time.monotonic() - pushed:.1f} s after the push ({time.monotonic() - started:.1f} s after start)\n"
        )
        print(sb.kubectl("get", "gitrepos,proxmoxvms", "-o", "wide").out)
    else:
        assert sb.cluster is not None
        names = [node.name for node in sb.cluster.nodes]
        sb.wait_for(
            lambda: all(is_ready(sb.get("proxmoxnode", name)) for name in names), 120, "the nodes Ready"
        )
        print(sb.kubectl("get", "proxnix", "-o", "wide").out)
    print(demo.instructions(sb, Path(kubectl_binary()).parent, published))
    print(f"Metrics: curl -s http://127.0.0.1:{sb.metrics_port}/metrics | grep ^proxnix_\n")
    if exit_when_ready:
        return 0
    print("sandbox: running; Ctrl-C stops everything.")
    while sb.operator is not None and sb.operator.poll() is None:
        time.sleep(0.5)
    print("sandbox: the operator exited:\n" + sb.operator_log()[-3000:], file=sys.stderr)
    return 1


if __name__ == "__main__":
    # Run the imported module's main (not this __main__ copy), so that the sandbox's classes are one and the same for
    # proxnix_testbed.demo.
    from proxnix_testbed import sandbox

    sys.exit(sandbox.main())
