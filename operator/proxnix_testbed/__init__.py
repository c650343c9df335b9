"""proxnix_testbed: the project's test bed, never imported by the `proxnix` package.

It holds what tests and local development run *against*, as opposed to what ships:

- `proxnix_testbed.kubeapi` — a strict Kubernetes API server (kmock's emulator plus a strictness layer)
  that kopf 1.45 and kubectl 1.32 work against unchanged, in-process or standalone
  (`python -m proxnix_testbed.kubeapi`).

A local sandbox (API server + simulated Proxmox nodes + operator) will live here later.
"""
