"""proxnix: GitOps for Proxmox VMs, as a Kubernetes operator.

The package is layered (enforced by import-linter, see `.importlinter`):
`api` (models) <- `proxmox`, `sources` (pure logic) <- `adapters` (I/O) <- `reconcile` (steps)
<- `handlers` (kopf wiring); `webhook` is the push-receiving sidecar.
"""

__version__ = "0.1.0"
