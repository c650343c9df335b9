"""`proxnix operator`: run the kopf operator against the current kubeconfig (or in-cluster config).

Wires the handlers into a fresh kopf registry with the command line's settings, configures kopf (finalizer and
annotation names under proxnix.io, peering, event posting) and holds the shared objects in kopf's memo.
Peering: every replica joins the `proxnix` peering with a random priority unless one is given, so exactly one
replica acts and the others stand by until it is gone (kopf pauses lower-priority peers).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
from pathlib import Path
from typing import Any

import kopf

from proxnix.adapters.kube import KubeApi
from proxnix.adapters.local_images import NIX_STORE, LocalImages
from proxnix.api.meta import GROUP
from proxnix.handlers import nodes, vms
from proxnix.handlers.context import OperatorConfig, OperatorContext
from proxnix.reconcile.nodes import NodeDirectory
from proxnix.reconcile.vm import VmReconciler

log = logging.getLogger("proxnix.operator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    parser.add_argument(
        "--health-listen",
        default="0.0.0.0:8080",
        help="HOST:PORT of the /healthz endpoint for liveness and readiness probes (default 0.0.0.0:8080)",
    )
    parser.add_argument(
        "--standalone", action="store_true", help="no peering (a single replica, or local runs)"
    )
    parser.add_argument(
        "--peering-name", default="proxnix", help="kopf peering object name (default proxnix)"
    )
    parser.add_argument("--priority", type=int, default=None, help="peering priority (default: random)")
    parser.add_argument(
        "--resync-interval", type=float, default=30.0, help="seconds between VM resyncs (default 30)"
    )
    parser.add_argument(
        "--image-root",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="serve local images (spec.image.source paths) only from under DIR, after following links "
        f"(repeatable; default {NIX_STORE})",
    )
    parser.add_argument(
        "--require-image-sha256",
        action="store_true",
        help="refuse image URLs without spec.image.sha256 (condition ImageSha256Required)",
    )
    parser.add_argument(
        "--image-cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="private folder for downloaded images (default: <tmp>/proxnix-images-<uid>, mode 0700)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A kopf registry holding every proxnix handler."""
    registry = kopf.OperatorRegistry()
    nodes.register(registry, config)
    vms.register(registry, config)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        # kopf's own annotations get their own prefix: kopf drops every annotation under its prefix from what it
        # compares, and users' proxnix.io/requested-at must count as a change.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=f"kopf.{GROUP}")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=f"kopf.{GROUP}", key="last-handled-configuration"
        )
        settings.posting.loggers = False  # Events are the operator's own (kopf.event), not its log lines
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
        directory = NodeDirectory()
        memo.ctx = OperatorContext(
            config=config,
            kube=KubeApi.from_kubeconfig(),
            nodes=directory,
            reconciler=VmReconciler(
                directory,
                LocalImages(
                    config.image_roots,
                    cache_dir=config.image_cache,
                    require_url_sha256=config.require_image_sha256,
                ),
            ),
        )
        memo.node_probed = {}
        memo.vm_resynced = {}
        log.info(
            "proxnix operator started (resync every %.0f s; image roots %s)",
            config.resync_interval,
            ", ".join(str(r) for r in config.image_roots),
        )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: Any, **_: Any) -> None:
        ctx: OperatorContext | None = getattr(memo, "ctx", None)
        if ctx is not None:
            ctx.reconciler.images.close()
            await ctx.nodes.close()
            ctx.kube.close()

    return registry


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("asyncssh", "kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = OperatorConfig(
        resync_interval=args.resync_interval,
        image_roots=tuple(args.image_root) or (NIX_STORE,),
        image_cache=args.image_cache,
        require_image_sha256=args.require_image_sha256,
    )
    registry = build_registry(config)
    host, _, port = args.health_listen.rpartition(":")
    priority = args.priority if args.priority is not None else random.randint(1, 1_000_000)  # noqa: S311
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=f"http://{host or '0.0.0.0'}:{port}/healthz",  # noqa: S104
            standalone=args.standalone,
            peering_name=None if args.standalone else args.peering_name,
            priority=priority,
            memo=kopf.Memo(),
        )
    )
    return 0
