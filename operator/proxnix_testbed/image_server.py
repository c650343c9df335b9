"""A loopback HTTP server of disk images that misbehaves on request, for the download tests and benchmarks.

Files are served from one folder. The first path segment says how:
    /ok/<file>                 the file, with its Content-Length
    /trickle/<secs>/<file>     announces the whole length, then sends one byte every <secs> seconds
    /short/<bytes>/<file>      announces the whole length, sends the first <bytes> bytes and closes
    /lie/<extra>/<file>        announces <extra> bytes more than it sends, sends the whole file and closes
    /status/<code>/<file>      answers with that HTTP status
Each request is counted per path (`hits`). Listens on 127.0.0.1 only; runs in a daemon thread.
"""

from __future__ import annotations

import collections
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


class ImageServer:
    """`with ImageServer(folder) as srv: srv.url("ok", "x.qcow2")`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hits[self.path] += 1
                server._serve(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, *parts: str) -> str:
        return f"http://127.0.0.1:{self.port}/" + "/".join(parts)

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = h.path.lstrip("/").split("/")
        mode, args, name = parts[0], parts[1:-1], parts[-1]
        path = self.folder / name
        if not path.is_file() or "/" in name or name.startswith("."):
            h.send_error(404)
            return
        data = path.read_bytes()
        if mode == "status":
            h.send_error(int(args[0]))
            return
        announced = len(data) + (int(args[0]) if mode == "lie" else 0)
        body = data[: int(args[0])] if mode == "short" else data
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(announced))
        h.end_headers()
        try:
            if mode == "trickle":
                interval = float(args[0])
                for i in range(len(body)):
                    if self._stop.wait(interval):
                        return
                    h.wfile.write(body[i : i + 1])
                    h.wfile.flush()
            else:
                h.wfile.write(body)
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        h.close_connection = True
