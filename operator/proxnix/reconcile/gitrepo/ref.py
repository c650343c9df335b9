"""The GitRepo object as the reconcile steps see it (`GitRepoRef`, its spec validated) and the names derived from it."""

from __future__ import annotations

from dataclasses import dataclass

from proxnix.adapters.git import RepoKey
from proxnix.api.gitrepo import GitRepoSpec, GitRepoStatus
from proxnix.sources.flake.render import Owner


@dataclass(frozen=True)
class GitRepoRef:
    """The GitRepo being reconciled: identity, typed spec, the status it had, and the annotations that matter.

    `requested_at` is `proxnix.io/requested-at` (echoed to lastHandledReconcileAt); `confirm_prune` is
    `proxnix.io/confirm-prune` (the revision whose prune over the limit the user confirmed)."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: GitRepoSpec
    status: GitRepoStatus
    requested_at: str = ""
    confirm_prune: str = ""

    @property
    def key(self) -> RepoKey:
        """The GitRepo's git cache, GC roots and build logs."""
        return RepoKey(self.namespace, self.name)

    @property
    def owner(self) -> Owner:
        """The owner written into every ProxmoxVM it renders."""
        return Owner(namespace=self.namespace, name=self.name, uid=self.uid)
