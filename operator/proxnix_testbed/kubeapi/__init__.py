"""A strict Kubernetes API server for tests: kmock's emulator plus the semantics kopf and kubectl rely on.

- `StrictKubernetesEmulator` — the kmock handler (also usable with kmock's pytest plugin via
  `@pytest.mark.kmock(cls=StrictKubernetesEmulator)`);
- `serve()` / `ThreadedServer` — run it on a port (in this loop / in a thread), with a kubeconfig and CRDs loaded;
- `python -m proxnix_testbed.kubeapi` — the standalone server for kubectl and subprocesses.
"""

from proxnix_testbed.kubeapi.emulator import StrictKubernetesEmulator
from proxnix_testbed.kubeapi.kubeconfig import kubeconfig, write_kubeconfig
from proxnix_testbed.kubeapi.server import RunningServer, ThreadedServer, load_crds, serve

__all__ = [
    "RunningServer",
    "StrictKubernetesEmulator",
    "ThreadedServer",
    "kubeconfig",
    "load_crds",
    "serve",
    "write_kubeconfig",
]
