"""Pytest fixtures and helpers for tests that need a Kubernetes API: the project's strict test API server.

Fixtures (function-scoped, each test gets a fresh, empty cluster with the default namespaces):

- `kubeapi` — the server in a background thread of this process (`KubeAPI`: `.url`, `.kubeconfig`, `.env`,
  `.request()`, `.install_crds()`, `.call(fn)` to inspect the emulator, `.kubectl()`);
- `kubeapi_process` — the standalone server (`python -m proxnix_testbed.kubeapi`) as a subprocess, same API
  except `.call()`; what end-to-end tests with kubectl and `proxnix operator` subprocesses use;
- `kubectl` — `kubectl(*args)` bound to `kubeapi_process` (KUBECONFIG and a private discovery cache set).

Helpers: `running_kubeapi(workdir, **options)` (a server with options, e.g. `crds=[REPO_CRDS]`, `kopf_peering=True`),
`kopf_login(url)` (a kopf login handler for in-process operators), `wait_for(predicate, timeout)` and
`await eventually(probe, within)` (poll a condition, never sleep-and-hope), `start_process`/`stop_process`
(the standalone server with extra CLI flags), `REPO_CRDS` (the project's generated CRDs folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import select
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import pytest

from proxnix_testbed import sandbox
from proxnix_testbed.controlplane.binaries import run_kubectl
from proxnix_testbed.kubeapi import StrictKubernetesEmulator, ThreadedServer

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
REPO_CRDS = REPO_ROOT / "crds"

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy (and return that), or fail the test after `timeout` s."""
    try:
        return sandbox.wait_for(predicate, timeout, what or repr(predicate), interval=interval)
    except sandbox.SandboxError as exc:
        pytest.fail(str(exc))


async def eventually(probe: Callable[[], T], within: float = 15.0, what: str = "") -> T:
    """Async `wait_for`: the blocking probe runs in a worker thread, so an in-process operator keeps running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await asyncio.to_thread(probe)
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what or probe!r}")
        await asyncio.sleep(0.05)


class ApiResponse:
    def __init__(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def __repr__(self) -> str:
        return f"ApiResponse({self.status}, {self.body!r})"


class KubeAPI:
    """A running test API server: where it is, and small sync helpers to talk to it."""

    def __init__(
        self,
        url: str,
        kubeconfig: pathlib.Path,
        workdir: pathlib.Path,
        server: ThreadedServer | None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self._server = server
        self._ssl = ssl_context  # for the real control plane: its CA and the admin's client certificate

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses (kubectl, `proxnix operator`) that should use this server."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.workdir / "kube-cache")
        return env

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """One HTTP call; `body` is JSON-encoded unless it is bytes. Never raises on HTTP error codes."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - local server
        if data is not None:
            req.add_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self._ssl) as rsp:  # noqa: S310 - a local test server
                raw, status, rsp_headers = rsp.read(), rsp.status, rsp.headers
        except urllib.error.HTTPError as exc:
            raw, status, rsp_headers = exc.read(), exc.code, exc.headers
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode()
        return ApiResponse(status, parsed, dict(rsp_headers.items()))

    def watch(self, path: str, timeout_seconds: float = 1) -> list[dict[str, Any]]:
        """Watch `path` (a collection URL, query allowed) with `timeoutSeconds`; return all events once it ends."""
        sep = "&" if "?" in path else "?"
        url = f"{self.url}{path}{sep}watch=true&timeoutSeconds={timeout_seconds}"
        with urllib.request.urlopen(url, timeout=timeout_seconds + 30, context=self._ssl) as rsp:  # noqa: S310
            return [json.loads(line) for line in rsp.read().splitlines() if line.strip()]

    def get(self, path: str) -> ApiResponse:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> ApiResponse:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> ApiResponse:
        return self.request("PUT", path, body)

    def patch(self, path: str, body: Any, patch_type: str = "merge") -> ApiResponse:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[patch_type]
        return self.request("PATCH", path, body, content_type)

    def delete(self, path: str, body: Any = None) -> ApiResponse:
        return self.request("DELETE", path, body)

    def install_crds(self, *sources: dict[str, Any] | str | os.PathLike[str]) -> None:
        """POST CRDs (dicts, YAML files or folders of them); their resources are served as soon as this returns."""
        from proxnix_testbed.kubeapi.crds import iter_crd_documents

        for source in sources:
            docs = [source] if isinstance(source, dict) else list(iter_crd_documents(pathlib.Path(source)))
            for crd in docs:
                rsp = self.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
                assert rsp.status == 201, rsp

    def call(self, fn: Callable[[StrictKubernetesEmulator], T]) -> T:
        """Run `fn(emulator)` in the server's event loop (only for the in-thread server)."""
        if self._server is None:
            raise RuntimeError("call() needs the in-process server (the `kubeapi` fixture)")
        return self._server.call(fn)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this server; fails the test with its stderr if `check` and it exits non-zero."""
        result = run_kubectl(args, self.env, input=input, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result


def kopf_login(url: str) -> Callable[..., Any]:
    """A kopf login handler for an operator run in-process: `kopf.on.login(registry=r)(kopf_login(api.url))`."""
    import kopf

    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, insecure=True, default_namespace="default")

    return login


@contextlib.contextmanager
def running_kubeapi(workdir: pathlib.Path, **options: Any) -> Iterator[KubeAPI]:
    """Run a server in a thread (options as for `proxnix_testbed.kubeapi.serve`, e.g. `crds=[REPO_CRDS]`,
    `kopf_peering=True`, `watch_history=3`); on exit, fail if it hit internal errors (HTTP 500s)."""
    server = ThreadedServer(kubeconfig=workdir / "kubeconfig", **options)
    running = server.start()
    assert running.kubeconfig is not None
    try:
        yield KubeAPI(running.url, running.kubeconfig, workdir, server)
        internal_errors = server.call(lambda emulator: [repr(e) for e in emulator.errors])
        assert not internal_errors, f"the test API server failed internally: {internal_errors}"
    finally:
        server.stop()


@pytest.fixture
def kubeapi(tmp_path: pathlib.Path) -> Iterator[KubeAPI]:
    """A fresh test API server in a background thread of this process."""
    with running_kubeapi(tmp_path / "kubeapi") as api:
        yield api


def start_process(
    workdir: pathlib.Path, *extra: str, timeout: float = 20.0
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start `python -m proxnix_testbed.kubeapi` and wait for its ready line; returns the process and that line."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    stderr = (workdir / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxnix_testbed.kubeapi",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    stderr.close()
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)  # one JSON line once it listens
    line = proc.stdout.readline() if readable else ""
    if not line:
        proc.kill()
        proc.wait()
        pytest.fail(
            f"the test API server did not get ready in {timeout}s:\n{(workdir / 'server.log').read_text()}"
        )
    return proc, json.loads(line)


def stop_process(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def kubeapi_process(tmp_path: pathlib.Path) -> Iterator[KubeAPI]:
    """A fresh standalone test API server as a subprocess (SIGTERM at teardown)."""
    workdir = tmp_path / "kubeapi"
    proc, ready = start_process(workdir)
    try:
        yield KubeAPI(ready["url"], pathlib.Path(ready["kubeconfig"]), workdir, None)
    finally:
        stop_process(proc)
        assert proc.returncode == 0, (workdir / "server.log").read_text()


@pytest.fixture
def kubectl(kubeapi_process: KubeAPI) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`kubectl(*args, input=None, check=True)` against the standalone server."""
    return kubeapi_process.kubectl
