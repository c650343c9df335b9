"""`proxnix operator`: run the kopf operator against the current kubeconfig (or in-cluster config).

Wires the handlers into a fresh kopf registry with the command line's settings, configures kopf (finalizer and
annotation names under proxnix.io, peering, event posting) and holds the shared objects in kopf's memo.
Peering (decided in `proxnix.handlers.peering` before kopf starts, and logged): `--peering NAME` joins that peering
(mandatory: not ready while its object is missing), `--standalone` none, and by default the `proxnix` peering when it
exists, else standalone with a warning. Each replica takes a random priority unless given one, so exactly one
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

from proxnix.adapters.git import GitSource
from proxnix.adapters.kube import KubeApi
from proxnix.adapters.local_images import NIX_STORE, LocalImages
from proxnix.adapters.nix import Nix
from proxnix.api.meta import GROUP, VERSION
from proxnix.handlers import gitrepos, nodes, peering, vms
from proxnix.handlers.context import OperatorConfig, OperatorContext
from proxnix.handlers.metrics import PHASE_INDEX, OperatorMetrics, phase_of
from proxnix.reconcile.gitrepo import GitRepoReconciler
from proxnix.reconcile.node_directory import NodeDirectory
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
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--standalone", action="store_true", help="no peering (a single replica, or local runs)"
    )
    mode.add_argument(
        "--peering",
        metavar="NAME",
        default=None,
        help="join kopf peering NAME (mandatory: not ready while its object is missing); default: the `proxnix` "
        "peering if it exists, else standalone with a warning",
    )
    parser.add_argument("--priority", type=int, default=None, help="peering priority (default: random)")
    parser.add_argument(
        "--metrics-listen",
        default="",
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: not served)",
    )
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
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("/var/cache/proxnix"),
        help="the GitRepos' git caches, nix GC roots and build logs (default /var/cache/proxnix; a volume in a "
        "cluster). nix itself runs with the operator's nix configuration (nix.conf, NIX_CONFIG), untouched",
    )
    parser.add_argument(
        "--max-concurrent-builds",
        type=int,
        default=2,
        help="nix builds running at once across every GitRepo (default 2; each may use nix's max-jobs)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A kopf registry holding every proxnix handler."""
    registry = kopf.OperatorRegistry()
    nodes.register(registry, config)
    vms.register(registry, config)
    gitrepos.register(registry, config)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_via_client(**kwargs)

    @kopf.index(GROUP, VERSION, "proxmoxvms", id=PHASE_INDEX, registry=registry)
    def vm_phases(body: kopf.Body, **_: Any) -> dict[str, str]:
        """ProxmoxVMs by phase, kept current by kopf from the watch stream (for the `proxnix_vms` metric)."""
        return {phase_of(body): body.metadata.uid or ""}

    @kopf.on.probe(id="peering", registry=registry)
    def peering_ready(memo: Any, **_: Any) -> None:
        """/healthz fails while a mandatory peering's object is missing (the operator would do nothing)."""
        watch: peering.PeeringWatch = memo.peering
        if watch.waiting:
            raise kopf.PermanentError(f"waiting for peering {watch.name!r}: {peering.HOW_TO_APPLY}")

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, memo: Any, **kwargs: Any) -> None:
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        # kopf's own annotations get their own prefix: kopf drops every annotation under its prefix from what it
        # compares, and users' proxnix.io/requested-at must count as a change.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=f"kopf.{GROUP}")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=f"kopf.{GROUP}", key="last-handled-configuration"
        )
        settings.posting.loggers = (
            False  # Events are the operator's own (posted by the kube adapter), not log lines
        )
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
        directory = NodeDirectory()
        memo.images = LocalImages(
            config.image_roots, cache_dir=config.image_cache, require_url_sha256=config.require_image_sha256
        )
        state = config.state_dir
        source = GitSource(state / "git", scratch_root=state / "checkouts")
        builder = Nix(state / "nix", max_concurrent_builds=config.max_concurrent_builds)
        memo.metrics = OperatorMetrics(directory, builder.stats)
        memo.ctx = OperatorContext(
            config=config,
            kube=memo.kube,
            nodes=directory,
            reconciler=VmReconciler(directory, memo.images),
            gitrepos=GitRepoReconciler(memo.kube, source, builder, timer=memo.metrics),
        )
        memo.node_probed = {}
        memo.vm_resynced = {}
        memo.metrics.watch_phases(kwargs[PHASE_INDEX])
        if config.metrics_listen:
            memo.metrics.serve(config.metrics_listen)
            log.info("metrics on http://%s/metrics", config.metrics_listen)
        memo.peering.start()
        log.info(
            "proxnix operator started (resync every %.0f s; image roots %s)",
            config.resync_interval,
            ", ".join(str(r) for r in config.image_roots),
        )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: Any, **_: Any) -> None:
        await memo.peering.stop()
        ctx: OperatorContext | None = getattr(memo, "ctx", None)
        if ctx is not None:
            memo.images.close()
            await ctx.nodes.close()
        memo.kube.close()

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
        metrics_listen=args.metrics_listen,
        image_roots=tuple(args.image_root) or (NIX_STORE,),
        image_cache=args.image_cache,
        require_image_sha256=args.require_image_sha256,
        state_dir=args.state_dir.resolve(),
        max_concurrent_builds=args.max_concurrent_builds,
    )
    asyncio.run(_operate(args, config))
    return 0


async def _operate(args: argparse.Namespace, config: OperatorConfig) -> None:
    registry = build_registry(config)
    host, _, port = args.health_listen.rpartition(":")
    priority = args.priority if args.priority is not None else random.randint(1, 1_000_000)  # noqa: S311
    kube = KubeApi.from_kubeconfig()
    choice = await peering.detect(kube, args.peering, args.standalone, args.namespace)
    memo = kopf.Memo()
    memo.kube = kube
    memo.peering = peering.PeeringWatch(kube, choice.name or "", args.namespace, waiting=choice.waiting)
    await kopf.operator(
        registry=registry,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=f"http://{host or '0.0.0.0'}:{port}/healthz",  # noqa: S104
        # kopf's own auto-detection would look for a peering named "default": always tell it which, or none.
        standalone=choice.name is None,
        peering_name=choice.name,
        priority=priority,
        memo=memo,
    )
