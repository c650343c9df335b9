"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC on) and kube-controller-manager (garbage
collector, namespace lifecycle, service accounts and their tokens), each a child process on free 127.0.0.1 ports.

`ControlPlane.start(folder)` makes the PKI and kubeconfigs, starts the three, and returns once `/readyz` and
`/openapi/v2` answer; `stop()` ends them (SIGTERM, then SIGKILL) so that no port stays bound. `request()` talks to the
API as the admin (client certificate in `system:masters`); `kubectl()` runs the pinned kubectl with any kubeconfig.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from proxnix_testbed.controlplane import binaries
from proxnix_testbed.controlplane.kubeconfig import write_cert_kubeconfig
from proxnix_testbed.controlplane.pki import Pki, make_pki

SERVICE_CIDR = "10.0.0.0/24"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = "garbagecollector,namespace,serviceaccount,serviceaccount-token"
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
"""


class ControlPlaneError(RuntimeError):
    """The control plane did not come up, or an API call failed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_bound(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Response:
    """An API answer: the HTTP status and the decoded JSON body (or text)."""

    status: int
    body: Any


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    ports: tuple[int, ...]


@dataclass
class ControlPlane:
    """A running control plane (see the module docstring)."""

    dir: Path
    url: str
    pki: Pki
    admin_kubeconfig: Path
    audit_log: Path | None = None
    _children: list[_Child] = field(default_factory=list)
    _ssl: ssl.SSLContext | None = None

    # --- life cycle ------------------------------------------------------------------------------------------------

    @classmethod
    def start(cls, folder: Path, *, audit: bool = False, timeout: float = 90) -> ControlPlane:
        """Start etcd, kube-apiserver and kube-controller-manager under `folder` (created); `audit` writes every
        request's metadata to `audit.log` (for benchmarks that count requests per client)."""
        kube_bin = binaries.kube_bin_dir()  # may build on the first run; before anything is started
        folder = folder.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        pki = make_pki(folder / "pki")
        api_port = free_port()
        url = f"https://127.0.0.1:{api_port}"
        admin = write_cert_kubeconfig(
            folder / "admin.kubeconfig", url, pki.ca_cert, pki.admin.cert, pki.admin.key, "proxnix-admin"
        )
        manager_config = write_cert_kubeconfig(
            folder / "controller-manager.kubeconfig",
            url,
            pki.ca_cert,
            pki.controller_manager.cert,
            pki.controller_manager.key,
            "system:kube-controller-manager",
        )
        plane = cls(dir=folder, url=url, pki=pki, admin_kubeconfig=admin)
        try:
            etcd_url = plane._start_etcd()
            plane._start_apiserver(kube_bin / "kube-apiserver", api_port, etcd_url, audit=audit)
            plane._wait_ready(timeout)
            plane._spawn(
                "kube-controller-manager",
                [
                    str(kube_bin / "kube-controller-manager"),
                    f"--kubeconfig={manager_config}",
                    f"--controllers={CONTROLLERS}",
                    "--secure-port=0",
                    "--leader-elect=false",
                    f"--service-account-private-key-file={pki.sa_private}",
                    f"--root-ca-file={pki.ca_cert}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--v=1",
                ],
                (),
            )
        except BaseException:
            plane.stop()
            raise
        return plane

    def _spawn(self, name: str, argv: Sequence[str], ports: tuple[int, ...]) -> subprocess.Popen[bytes]:
        log = (self.dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._children.append(_Child(name, proc, ports))
        return proc

    def _start_etcd(self) -> str:
        client, peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        self._spawn(
            "etcd",
            [
                binaries.etcd_binary(),
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",  # a throw-away store: durability costs seconds per test for nothing
                "--log-level=warn",
            ],
            (client, peer),
        )
        self._wait(lambda: port_bound(client), 30, "etcd listening")
        return client_url

    def _start_apiserver(self, binary: Path, port: int, etcd_url: str, *, audit: bool) -> None:
        pki = self.pki
        argv = [
            str(binary),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.server_cert}",
            f"--tls-private-key-file={pki.server_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-key-file={pki.sa_public}",
            f"--service-account-signing-key-file={pki.sa_private}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--endpoint-reconciler-type=none",  # a loopback address is not a valid Endpoints address
            "--v=1",
        ]
        if audit:
            policy = self.dir / "audit-policy.yaml"
            policy.write_text(AUDIT_POLICY)
            self.audit_log = self.dir / "audit.log"
            argv += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-mode=blocking",
            ]
        self._spawn("kube-apiserver", argv, (port,))

    def _wait_ready(self, timeout: float) -> None:
        self._wait(lambda: self.request("GET", "/readyz").status == 200, timeout, "kube-apiserver /readyz")
        self._wait(
            lambda: self.request("GET", "/openapi/v2").status == 200, timeout, "kube-apiserver /openapi/v2"
        )

    def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for child in self._children:
                if child.proc.poll() is not None:
                    raise ControlPlaneError(
                        f"{child.name} exited ({child.proc.returncode}) while waiting for {what}:\n"
                        + self.log(child.name)[-3000:]
                    )
            with contextlib.suppress(OSError):
                if predicate():
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    def stop(self, timeout: float = 20) -> None:
        """End every process, newest first (SIGTERM, SIGKILL after `timeout`); idempotent."""
        while self._children:
            child = self._children.pop()
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
                try:
                    child.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait(timeout)
            deadline = time.monotonic() + timeout
            while any(port_bound(p) for p in child.ports) and time.monotonic() < deadline:
                time.sleep(0.05)

    def running(self) -> bool:
        return bool(self._children) and all(c.proc.poll() is None for c in self._children)

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def ports(self) -> list[int]:
        return [p for c in self._children for p in c.ports]

    # --- talking to it ---------------------------------------------------------------------------------------------

    def admin_ssl_context(self) -> ssl.SSLContext:
        """TLS context trusting the control plane's CA and presenting the admin's client certificate."""
        if self._ssl is None:
            context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
            context.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
            self._ssl = context
        return self._ssl

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Response:
        """One call as the admin; never raises on an HTTP error status."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - loopback only
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.admin_ssl_context()) as rsp:  # noqa: S310
                raw, status = rsp.read(), rsp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Response(status, parsed)

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        kubeconfig: Path | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl (as the admin unless `kubeconfig` says otherwise)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(kubeconfig or self.admin_kubeconfig)
        env["KUBECACHEDIR"] = str(self.dir / "kube-cache")
        result = binaries.run_kubectl(args, env, input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def install(self, *manifests: Path) -> None:
        """Server-side apply files or folders of manifests; wait until any CRDs among them are established (and
        apply again if objects of those kinds came in the same files)."""
        args = [
            "apply",
            "--server-side",
            "--force-conflicts",
            *(a for m in manifests for a in ("-f", str(m))),
        ]
        first = self.kubectl(*args, check=False)
        crds = self.kubectl("get", "crd", "-o", "name").stdout.split()
        if crds:
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
        if first.returncode != 0:
            self.kubectl(*args)


@contextlib.contextmanager
def running_control_plane(folder: Path, *, audit: bool = False) -> Iterator[ControlPlane]:
    """A control plane for the duration of the block."""
    plane = ControlPlane.start(folder, audit=audit)
    try:
        yield plane
    finally:
        plane.stop()


def write_ready_line(plane: ControlPlane, out: IO[str]) -> None:
    """The one JSON line the CLI prints once the control plane is ready."""
    out.write(json.dumps({"url": plane.url, "kubeconfig": str(plane.admin_kubeconfig)}) + "\n")
    out.flush()
