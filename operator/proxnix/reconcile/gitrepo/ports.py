"""The GitRepo reconcile's I/O, as Protocols: the git source, nix, the Kubernetes objects it reads and writes, and
where it reports how long its steps took.

The operator passes `proxnix.adapters.git.GitSource`, `proxnix.adapters.nix.Nix`, `proxnix.adapters.kube.KubeApi` and
its metrics (`proxnix.handlers.metrics.OperatorMetrics` as the `StepTimer`);
unit tests pass in-memory fakes (`tests.support.fake_gitrepo`), so every step and every safety rule is tested
without a server. Nothing here reaches a node: the GitRepo writes ProxmoxVM objects, the VM controller does the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from proxnix.adapters.git import Fetched, RepoKey
from proxnix.adapters.nix import BuiltImage
from proxnix.api.gitrepo import GitRef
from proxnix.sources.flake.nix_commands import FlakeRef
from proxnix.sources.flake.nix_outputs import ImageProbe
from proxnix.sources.gitsource import GitCredentials


class Source(Protocol):
    """The git side (`GitSource`): fetch into the GitRepo's cache, check a commit out, forget the cache."""

    async def fetch(
        self, key: RepoKey, url: str, ref: GitRef, credentials: GitCredentials | None = None
    ) -> Fetched: ...

    def checkout(
        self,
        key: RepoKey,
        revision: str,
        *,
        url: str,
        credentials: GitCredentials | None = None,
        submodules: bool = False,
    ) -> AbstractAsyncContextManager[Path]: ...

    def forget(self, key: RepoKey) -> None: ...


class Builder(Protocol):
    """The nix side (`Nix`): evaluate, probe and build the used images, keep them alive with GC roots."""

    async def evaluate(self, flake: FlakeRef) -> str: ...

    async def probe(self, flake: FlakeRef, image_types: Sequence[str]) -> dict[str, ImageProbe]: ...

    async def build(
        self,
        key: RepoKey,
        revision: str,
        flake: FlakeRef,
        probes: Sequence[ImageProbe],
        known_sha256: Mapping[str, str] | None = None,
    ) -> dict[str, BuiltImage]: ...

    async def add_roots(self, key: RepoKey, store_paths: Sequence[str]) -> None: ...

    def drop_roots(self, key: RepoKey, keep: Sequence[str] = ()) -> list[str]: ...


class Cluster(Protocol):
    """The Kubernetes objects (`KubeApi`): the GitRepo's Secret, the GitRepo itself as it is now (new webhook marks),
    the namespace's ProxmoxNodes and ProxmoxVMs."""

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None: ...

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def list_objects(
        self, plural: str, namespace: str | None, *, label_selector: str = ""
    ) -> list[dict[str, Any]]: ...

    async def create_object(self, plural: str, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    async def patch_object(
        self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def delete_object(self, plural: str, namespace: str, name: str) -> bool: ...


class StepTimer(Protocol):
    """Where each reconcile reports the seconds each of its steps took (`fetch`, `settle` while a burst of pushes
    pauses, `eval`, `build`, `apply`; eval and build only when a revision is new to this process): the operator's
    `proxnix_gitrepo_step_seconds`."""

    def observe_step(self, step: str, seconds: float) -> None: ...
