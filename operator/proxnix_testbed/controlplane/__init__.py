"""A real Kubernetes control plane for tests, the sandbox and benchmarks: etcd + kube-apiserver +
kube-controller-manager on loopback (`cluster`), their PKI (`pki`), kubeconfigs (`kubeconfig`), where the binaries
come from (`binaries`), and the ServiceAccounts proxnix runs as (`identities`).

`python -m proxnix_testbed.controlplane --dir D` runs one until SIGTERM/SIGINT and prints a JSON line
(`url`, `kubeconfig`) once it is ready.
"""

from proxnix_testbed.controlplane.cluster import ControlPlane, ControlPlaneError, running_control_plane

__all__ = ["ControlPlane", "ControlPlaneError", "running_control_plane"]
