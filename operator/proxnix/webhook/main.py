"""`proxnix webhook`: the command-line entry point of the push-webhook sidecar.

Parses `--listen HOST:PORT`, `--namespace NS|all`, `--insecure-allow-unsigned`, `--idle-timeout` (request headers and
keep-alive idle), `--body-timeout` and friends, loads the Kubernetes
configuration (`--kubeconfig`, in-cluster, or `$KUBECONFIG`), serves until SIGTERM or SIGINT, then shuts down
gracefully: the listener closes, requests in flight get up to `--shutdown-timeout` seconds to finish (their patches
included), then the index loop stops and the API client closes. Exit status 0; 2 if the configuration cannot load.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from proxnix.adapters.kube import KubeApi, KubeError
from proxnix.webhook import logs
from proxnix.webhook.app import DEFAULT_BODY_TIMEOUT_S, DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_BODY, make_runner
from proxnix.webhook.sidecar import create_sidecar

log = logging.getLogger("proxnix.webhook")


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces) as (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "0.0.0.0", int(port)  # noqa: S104 (":PORT" asks for all interfaces)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `proxnix webhook` options."""
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=("0.0.0.0", 9292),  # noqa: S104 (a sidecar serves the pod network)
        metavar="HOST:PORT",
        help="address to serve on",
    )
    parser.add_argument(
        "--namespace",
        default="all",
        metavar="NS",
        help="namespace whose GitRepos are served, or `all` (default)",
    )
    parser.add_argument(
        "--insecure-allow-unsigned",
        action="store_true",
        help="accept unsigned pushes for GitRepos that have no webhook secret (unsafe; logs a warning)",
    )
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, else $KUBECONFIG)"
    )
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY, help="larger bodies get 413")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT_S,
        help="seconds a connection may take to send its request headers, or idle between requests",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT_S,
        help="seconds a request body may take after the headers (else 408)",
    )
    parser.add_argument("--resync-seconds", type=float, default=30.0, help="full GitRepo re-list period")
    parser.add_argument(
        "--miss-seconds", type=float, default=1.0, help="minimum spacing of re-lists on a miss"
    )
    parser.add_argument(
        "--shutdown-timeout", type=float, default=10.0, help="grace period for requests in flight"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


async def serve(args: argparse.Namespace) -> int:
    """Run the sidecar until SIGTERM/SIGINT."""
    try:
        api = KubeApi.from_kubeconfig(args.kubeconfig, args.context)
    except KubeError as exc:
        log.error("cannot start: %s", exc)
        return 2
    namespace = None if args.namespace == "all" else args.namespace
    if args.insecure_allow_unsigned:
        log.warning(
            "INSECURE: GitRepos without spec.webhook.secretRef accept unsigned pushes from anyone",
            extra={"fields": {"insecure": True}},
        )
    sidecar = create_sidecar(
        api,
        namespace=namespace,
        insecure=args.insecure_allow_unsigned,
        max_body_bytes=args.max_body_bytes,
        body_timeout_s=args.body_timeout,
        resync_interval=args.resync_seconds,
        miss_interval=args.miss_seconds,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = make_runner(
        sidecar.app, idle_timeout_s=args.idle_timeout, shutdown_timeout_s=args.shutdown_timeout
    )
    await runner.setup()
    try:
        host, port = args.listen
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses
        address = f"{bound[0][0]}:{bound[0][1]}" if bound else f"{host}:{port}"
        log.info(
            "listening",
            extra={"fields": {"address": address, "namespace": namespace or "all"}},
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
        api.close()
    log.info("stopped")
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of `proxnix webhook`."""
    logs.setup(args.log_level)
    return asyncio.run(serve(args))
