"""GitRepo reconcile: `reconciler` runs the steps of `steps` (fetch → evaluate → build → apply → prune → readiness)
and reports through `status`; `delete` orphans or deletes the ProxmoxVMs when the GitRepo goes; `ports` holds the
Protocols of its I/O (git, nix, Kubernetes objects) and `ref` the object as the steps see it. It writes ProxmoxVM
objects only: it never reaches a node, and may not import another kind's reconcile (see .importlinter)."""

from proxnix.reconcile.gitrepo.reconciler import GitRepoReconciler, invalid_spec
from proxnix.reconcile.gitrepo.ref import GitRepoRef

__all__ = ["GitRepoReconciler", "GitRepoRef", "invalid_spec"]
