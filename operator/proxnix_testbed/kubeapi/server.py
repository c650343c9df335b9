"""Running the emulator on a TCP port: `serve()` in the current event loop, `ThreadedServer` in a thread of its own.

Both listen on 127.0.0.1 (plain http: kubectl, kopf and the kubernetes client accept it), optionally preload CRDs
from YAML files or folders, and optionally write a kubeconfig. On stop, open watches are ended first so the HTTP
server stops at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import pathlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

import aiohttp.web

from proxnix_testbed.kubeapi.crds import iter_crd_documents, kopf_peering_crds
from proxnix_testbed.kubeapi.emulator import StrictKubernetesEmulator
from proxnix_testbed.kubeapi.kubeconfig import write_kubeconfig

T = TypeVar("T")


@dataclasses.dataclass
class RunningServer:
    url: str
    port: int
    emulator: StrictKubernetesEmulator
    kubeconfig: pathlib.Path | None
    startup_seconds: float


def load_crds(emulator: StrictKubernetesEmulator, paths: Iterable[str | os.PathLike[str]]) -> int:
    """Install the CRDs found in YAML files or folders of them; returns how many."""
    count = 0
    for path in paths:
        for crd in iter_crd_documents(pathlib.Path(path)):
            emulator.install_crd(crd)
            count += 1
    return count


@contextlib.asynccontextmanager
async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    crds: Iterable[str | os.PathLike[str]] = (),
    kopf_peering: bool = False,
    kubeconfig: str | os.PathLike[str] | None = None,
    **options: Any,
) -> AsyncIterator[RunningServer]:
    """Serve a fresh emulator until the context exits. `options` go to `StrictKubernetesEmulator`.

    `crds`: YAML files or folders of CRDs to install; `kopf_peering`: also install kopf's peering CRDs.
    """
    started = time.monotonic()
    emulator = StrictKubernetesEmulator(**options)
    async with emulator:
        load_crds(emulator, crds)
        if kopf_peering:
            for crd in kopf_peering_crds():
                emulator.install_crd(crd)
        runner = aiohttp.web.ServerRunner(aiohttp.web.Server(emulator), shutdown_timeout=1.0)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, host, port)
        await site.start()
        try:
            actual_port = int(runner.addresses[0][1])
            url = f"http://{host}:{actual_port}"
            path = write_kubeconfig(kubeconfig, url) if kubeconfig is not None else None
            yield RunningServer(url, actual_port, emulator, path, time.monotonic() - started)
        finally:
            emulator.close_watches()
            await runner.cleanup()


class ThreadedServer:
    """The emulator served from a background thread with its own event loop (for sync tests and subprocesses).

    `call(fn)` runs `fn(emulator)` in the server's loop and returns its result: the safe way to inspect or seed
    the emulator from another thread.
    """

    def __init__(self, **serve_options: Any) -> None:
        self._options = serve_options
        self._loop = asyncio.new_event_loop()
        self._ready: concurrent.futures.Future[RunningServer] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kubeapi-testbed", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with serve(**self._options) as running:
                self._ready.set_result(running)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def start(self, timeout: float = 10.0) -> RunningServer:
        self._thread.start()
        return self._ready.result(timeout)

    @property
    def running(self) -> RunningServer:
        return self._ready.result(0)

    def call(self, fn: Callable[[StrictKubernetesEmulator], T], timeout: float = 10.0) -> T:
        emulator = self.running.emulator

        async def invoke() -> T:
            return fn(emulator)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
