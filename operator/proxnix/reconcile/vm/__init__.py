"""ProxmoxVM reconcile: `reconciler` runs the steps of `steps` (observe → plan → act → agent) and reports through
`status`; `delete` is the deletion step; `ports` holds the Protocols of its I/O (node, client, images) and `ref` the
object as the steps see it. May not be imported by other reconcile packages (see .importlinter)."""

from proxnix.reconcile.vm.delete import kept_for_gitrepo
from proxnix.reconcile.vm.reconciler import VmReconciler, invalid_spec
from proxnix.reconcile.vm.ref import VmRef

__all__ = ["VmReconciler", "VmRef", "invalid_spec", "kept_for_gitrepo"]
