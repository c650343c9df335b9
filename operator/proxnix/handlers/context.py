"""What the handlers share for the operator's lifetime (kept in kopf's memo, never in module globals)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proxnix.adapters.kube import KubeApi
from proxnix.reconcile.gitrepo import GitRepoReconciler
from proxnix.reconcile.node_directory import NodeDirectory
from proxnix.reconcile.vm import VmReconciler


@dataclass(frozen=True)
class OperatorConfig:
    """Settings from the command line."""

    resync_interval: float = 30.0
    node_tick: float = 5.0
    agent_wait_retries: int = 40
    image_roots: tuple[Path, ...] = (Path("/nix/store"),)
    image_cache: Path | None = None
    require_image_sha256: bool = False
    metrics_listen: str = ""  # HOST:PORT of /metrics; empty: not served
    gitrepo_tick: float = 2.0
    """How often the GitRepo timer asks whether a GitRepo is due (its own spec.interval decides when it is)."""
    state_dir: Path = Path("/var/cache/proxnix")
    """The git caches, nix GC roots and build logs of the GitRepos (a volume in a cluster)."""
    max_concurrent_builds: int = 2


@dataclass
class OperatorContext:
    """The live objects: the API client, the node directory (SSH pools), the VM and GitRepo reconcilers."""

    config: OperatorConfig
    kube: KubeApi
    nodes: NodeDirectory
    reconciler: VmReconciler
    gitrepos: GitRepoReconciler
