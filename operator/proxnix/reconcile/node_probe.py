"""ProxmoxNode reconcile, the node probe: read the node's Secret, (re)build its SSH pool in the node directory,
probe the node, and report. Steps, in order, each owning what it sets:

1. `read_credentials` — the Secret named by spec.credentialsSecretRef (problem: SecretUnreadable / SecretNotFound);
2. `probe` — configure the node's handle, one inventory call (reachability and VM count; it also feeds the VMs'
   resync from the cache), plus one `pvesh get /version` when the pool is new or the version is not known yet.
   Owns NodeReachable, reachable, vmCount, pveVersion and hostKeyFingerprint;
3. `report` — Ready/Reconciling/Stalled through `proxnix.api.summarize` (an SSH failure that retrying cannot fix,
   such as a host key mismatch, stalls; anything else retries on `NODE_PROBE_FAILED`).
The spec arrives validated (the handler validates every kind's spec the same way). No kopf here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from proxnix.adapters.kube import KubeError
from proxnix.api.clock import now_rfc3339
from proxnix.api.conditions import ConditionType, find_condition, set_condition
from proxnix.api.proxmoxnode import READINESS, ProxmoxNodeSpec, ProxmoxNodeStatus
from proxnix.api.summarize import Problem, summarize
from proxnix.proxmox.errors import PermanentError, ProxmoxError
from proxnix.proxmox.inventory import NodeInventory
from proxnix.reconcile.outcome import NODE_PROBE_FAILED, Outcome, Retry, short


@dataclass(frozen=True)
class NodeRef:
    """The ProxmoxNode object being reconciled, its spec validated."""

    namespace: str
    name: str
    generation: int
    spec: ProxmoxNodeSpec
    status: ProxmoxNodeStatus


class Secrets(Protocol):
    """Reads a Secret's decoded data (`proxnix.adapters.kube.KubeApi`)."""

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None: ...


class ProbedNode(Protocol):
    """What the probe uses of a node handle (`proxnix.reconcile.node_directory.NodeHandle`)."""

    @property
    def node_name(self) -> str: ...

    @property
    def pve_version(self) -> str: ...

    @property
    def connected_before(self) -> bool: ...

    @property
    def trusted_fingerprint(self) -> str: ...

    async def inventory(self, max_age: float = 0.0) -> NodeInventory: ...

    async def read_version(self) -> str: ...

    def learn_version(self, version: str) -> None: ...


class NodeConfigurator(Protocol):
    """Builds or refreshes a node's handle (`proxnix.reconcile.node_directory.NodeDirectory`)."""

    async def configure(
        self,
        namespace: str,
        name: str,
        spec: ProxmoxNodeSpec,
        secret: Mapping[str, bytes],
        *,
        pinned_fingerprint: str = "",
    ) -> ProbedNode: ...


async def read_credentials(secrets: Secrets, ref: NodeRef) -> tuple[dict[str, bytes] | None, Problem | None]:
    """Step 1: the node's Secret, or why it cannot be had (the pool is not touched then)."""
    secret_name = ref.spec.credentials_secret_ref.name
    try:
        secret = await secrets.read_secret(ref.namespace, secret_name)
    except KubeError as exc:
        return None, Problem("SecretUnreadable", f"cannot read Secret {secret_name!r}: {exc}")
    if secret is None:
        return None, Problem(
            "SecretNotFound", f"Secret {secret_name!r} not found (keys ssh-privatekey and known_hosts)"
        )
    return secret, None


async def probe(
    nodes: NodeConfigurator, ref: NodeRef, secret: Mapping[str, bytes], status: ProxmoxNodeStatus, now: str
) -> Problem | None:
    """Step 2: configure the node's pool and probe the node; sets NodeReachable and the observed fields."""
    spec = ref.spec
    try:
        handle = await nodes.configure(
            ref.namespace, ref.name, spec, secret, pinned_fingerprint=status.host_key_fingerprint
        )
        new_pool = not handle.connected_before
        inventory = await handle.inventory(max_age=0)
        if new_pool or not status.pve_version:
            status.pve_version = await handle.read_version()
        handle.learn_version(status.pve_version)
    except ProxmoxError as exc:
        problem = Problem(exc.reason, short(exc), stalled=isinstance(exc, PermanentError))
        status.reachable = False
        status.conditions = set_condition(
            status.conditions,
            ConditionType.NODE_REACHABLE,
            "False",
            problem.reason,
            problem.message,
            ref.generation,
            now=now,
        )
        return problem
    if handle.trusted_fingerprint:
        status.host_key_fingerprint = handle.trusted_fingerprint
    status.reachable = True
    status.vm_count = len(inventory.vms)
    status.conditions = set_condition(
        status.conditions,
        ConditionType.NODE_REACHABLE,
        "True",
        "Reachable",
        f"{handle.node_name} answers over SSH ({spec.user}@{spec.host}:{spec.port}); {len(inventory.vms)} VMs",
        ref.generation,
        now=now,
    )
    return None


def report(ref: NodeRef, status: ProxmoxNodeStatus, problem: Problem | None, now: str) -> Outcome:
    """Step 3: Ready/Reconciling/Stalled from NodeReachable and the problem; retry or stall accordingly."""
    reachable = find_condition(status.conditions, ConditionType.NODE_REACHABLE)
    summarize(
        status,
        READINESS,
        generation=ref.generation,
        problem=problem,
        ready_message=reachable.message if reachable is not None else "",
        now=now,
    )
    status.last_probe_time = now
    outcome = Outcome(status)
    if problem is not None and problem.stalled:
        outcome.stall = problem.message
    elif problem is not None:
        outcome.retry = Retry(NODE_PROBE_FAILED, problem.message)
    return outcome


async def probe_node(nodes: NodeConfigurator, secrets: Secrets, ref: NodeRef) -> Outcome:
    """The node probe's steps in order: credentials → probe → report."""
    status = ref.status.model_copy(deep=True)
    now = now_rfc3339()
    secret, problem = await read_credentials(secrets, ref)
    if secret is not None:
        problem = await probe(nodes, ref, secret, status, now)
    return report(ref, status, problem, now)


def invalid_spec(status: ProxmoxNodeStatus, generation: int, message: str) -> Outcome:
    """The outcome for a ProxmoxNode whose spec does not validate: Stalled until the spec changes."""
    status = status.model_copy(deep=True)
    summarize(status, READINESS, generation=generation, problem=Problem("InvalidSpec", message, stalled=True))
    return Outcome(status, stall=message)
