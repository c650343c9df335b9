"""What the sidecar needs from the Kubernetes API (`GitRepoStore`), and a GitRepo reduced to what a push is matched on.

`proxnix.adapters.kube.KubeApi` satisfies the protocol against a real API server; `proxnix.webhook.memory.MemoryStore`
in memory (unit tests, the load benchmark). Objects are read leniently: a GitRepo without a usable url is kept (it can
still be addressed by `/hook/<namespace>/<name>`), one without a name is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from proxnix.sources.webhooks.matching import followed_ref
from proxnix.sources.webhooks.urls import repo_key

SECRET_DATA_KEY = "token"  # noqa: S105 (a key name, not a secret)
"""The key of a GitRepo's webhook Secret that holds the shared secret."""


class GitRepoStore(Protocol):
    """The Kubernetes calls the sidecar makes. Errors other than "not found" raise (any exception)."""

    async def list_gitrepos(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every GitRepo object (JSON dicts) in `namespace`, or in all namespaces when None."""
        ...

    async def read_secret_key(self, namespace: str, name: str, key: str) -> bytes | None:
        """A Secret's decoded value at `key`; None if the Secret or the key does not exist."""
        ...

    async def patch_gitrepo_annotations(
        self, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        """Merge-patch a GitRepo's annotations; raise an exception whose `status` is 404 if it does not exist."""
        ...


@dataclass(frozen=True)
class GitRepoEntry:
    """A GitRepo as the webhook sees it: who it is, which repository and ref it follows, and its webhook Secret."""

    namespace: str
    name: str
    url_key: str | None
    followed_ref: str | None
    secret_name: str | None

    @property
    def id(self) -> str:
        """`namespace/name`."""
        return f"{self.namespace}/{self.name}"


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def entry_from_object(obj: Mapping[str, Any]) -> GitRepoEntry | None:
    """The entry for a GitRepo object as the API returns it, or None if it has no namespace and name."""
    metadata, spec = _obj(obj.get("metadata")), _obj(obj.get("spec"))
    namespace, name = _str(metadata.get("namespace")), _str(metadata.get("name"))
    if namespace is None or name is None:
        return None
    url = _str(spec.get("url"))
    ref = _obj(spec.get("ref")) if "ref" in spec else {"branch": "main"}
    branch, tag, commit = _str(ref.get("branch")), _str(ref.get("tag")), _str(ref.get("commit"))
    followed = None if commit is not None else followed_ref(branch, None if branch else tag)
    secret = _str(_obj(_obj(spec.get("webhook")).get("secretRef")).get("name"))
    return GitRepoEntry(namespace, name, repo_key(url) if url else None, followed, secret)
