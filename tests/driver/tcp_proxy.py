"""A loopback TCP proxy the driver tests put between the SSH pool and a simulated node, to cut connections (a
network drop) or refuse new ones (an unreachable node) at a moment the test chooses."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target_port`. `drop_all()` cuts every connection; `refusing` makes new
    connections close at once (an unreachable node); `rate_limit` throttles client-to-server bytes."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.rate_limit: float | None = None  # bytes per second client -> server, None = unlimited
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self.refusing = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if upstream and self.rate_limit:
                    await asyncio.sleep(len(data) / self.rate_limit)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        self._writers |= {writer, up_writer}
        a = asyncio.create_task(self._pipe(reader, up_writer, upstream=True))
        b = asyncio.create_task(self._pipe(up_reader, writer, upstream=False))
        self._tasks |= {a, b}
        await asyncio.gather(a, b, return_exceptions=True)
        self._writers -= {writer, up_writer}
        self._tasks -= {a, b}

    @property
    def open_connections(self) -> int:
        return len(self._writers) // 2

    def drop_all(self) -> None:
        """Cut every forwarded connection (both directions), like a network failure."""
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()

    async def close(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
