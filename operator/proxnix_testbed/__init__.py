"""proxnix_testbed: the project's test bed, never imported by the `proxnix` package.

It holds what tests and local development run *against*, as opposed to what ships:

- `proxnix_testbed.controlplane` — a real Kubernetes control plane on loopback (etcd, kube-apiserver with RBAC,
  kube-controller-manager) built from the pinned release by hack/kube/build.sh; what the sandbox, the end-to-end
  tests and the benchmarks run against (`python -m proxnix_testbed.controlplane`);
- `proxnix_testbed.sandbox` — the local sandbox: simulated Proxmox nodes + the control plane + `proxnix operator`;
- `proxnix_testbed.kubeapi` — a strict Kubernetes API emulator (kmock's emulator plus a strictness layer), in-process
  or standalone (`python -m proxnix_testbed.kubeapi`); kept for its own tests and what a real server cannot be made
  to do on demand (e.g. a short watch history, so resumed watches get 410 Expired).
"""
