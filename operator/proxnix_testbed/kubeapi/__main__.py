"""`python -m proxnix_testbed.kubeapi`: the standalone test API server, serving until SIGTERM/SIGINT.

Prints one JSON line on stdout when ready — `{"url": ..., "port": ..., "kubeconfig": ..., "startup_seconds": ...}` —
so a parent process can wait for it; `--kubeconfig PATH` writes a kubeconfig kubectl and the kubernetes client use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from proxnix_testbed.kubeapi.server import serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m proxnix_testbed.kubeapi", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--kubeconfig", metavar="PATH", help="write a kubeconfig for this server to PATH")
    parser.add_argument(
        "--crds",
        metavar="PATH",
        action="append",
        default=[],
        help="install the CRDs in this YAML file or folder (repeatable)",
    )
    parser.add_argument(
        "--kopf-peering", action="store_true", help="install kopf's peering CRDs (kopf.dev/v1)"
    )
    parser.add_argument(
        "--max-watch-seconds",
        type=float,
        default=None,
        help="end watches without timeoutSeconds after this long",
    )
    return parser


async def _main(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(
        host=args.host,
        port=args.port,
        crds=args.crds,
        kopf_peering=args.kopf_peering,
        kubeconfig=args.kubeconfig,
        max_watch_seconds=args.max_watch_seconds,
    ) as running:
        ready = {
            "url": running.url,
            "port": running.port,
            "kubeconfig": str(running.kubeconfig) if running.kubeconfig else None,
            "startup_seconds": round(running.startup_seconds, 3),
        }
        print(json.dumps(ready), flush=True)
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
