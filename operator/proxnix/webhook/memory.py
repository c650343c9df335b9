"""An in-memory `GitRepoStore`: GitRepo objects and Secrets in dicts, patches recorded. For tests and the benchmark."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class MemoryNotFound(Exception):
    """The object does not exist (carries `status` 404 like the kube adapter's errors)."""

    status = 404


@dataclass
class MemoryStore:
    """GitRepos by (namespace, name), Secret values by (namespace, name, key); counts calls, records patches."""

    gitrepos: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    secrets: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    patches: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    list_calls: int = 0
    secret_reads: int = 0
    fail_lists: bool = False

    def add_gitrepo(
        self,
        namespace: str,
        name: str,
        url: str,
        *,
        branch: str | None = "main",
        tag: str | None = None,
        commit: str | None = None,
        secret: str | None = None,
    ) -> None:
        """Add (or replace) a GitRepo following `branch`, `tag` or `commit`, verified with Secret `secret`."""
        ref = {"commit": commit} if commit else {"tag": tag} if tag else {"branch": branch}
        spec: dict[str, Any] = {"url": url, "ref": ref}
        if secret is not None:
            spec["webhook"] = {"secretRef": {"name": secret}}
        self.gitrepos[(namespace, name)] = {
            "apiVersion": "proxnix.io/v1alpha1",
            "kind": "GitRepo",
            "metadata": {"namespace": namespace, "name": name, "annotations": {}},
            "spec": spec,
        }

    def annotations(self, namespace: str, name: str) -> dict[str, str]:
        """The GitRepo's current annotations."""
        return dict(self.gitrepos[(namespace, name)]["metadata"].get("annotations", {}))

    async def list_gitrepos(self, namespace: str | None) -> list[dict[str, Any]]:
        self.list_calls += 1
        if self.fail_lists:
            raise ConnectionError("the API server is unreachable")
        return [copy.deepcopy(obj) for (ns, _), obj in self.gitrepos.items() if namespace in (None, ns)]

    async def read_secret_key(self, namespace: str, name: str, key: str) -> bytes | None:
        self.secret_reads += 1
        return self.secrets.get((namespace, name, key))

    async def patch_gitrepo_annotations(
        self, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        obj = self.gitrepos.get((namespace, name))
        if obj is None:
            raise MemoryNotFound(f"gitrepos {namespace}/{name} not found")
        obj["metadata"].setdefault("annotations", {}).update(annotations)
        self.patches.append((namespace, name, dict(annotations)))
