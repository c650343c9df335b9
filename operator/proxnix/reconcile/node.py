"""ProxmoxNode reconcile: read the node's Secret, (re)build its SSH pool, probe it, and report its status.

A probe is one inventory call (reachability and VM count; its result also serves the VMs' resync from the cache),
plus one `pvesh get /version` when the node's pool is new or the version is not known yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from proxnix.adapters.kube import KubeApi, KubeError
from proxnix.adapters.proxmox_client import QmDialect
from proxnix.api.conditions import ConditionType, now_rfc3339, set_condition
from proxnix.api.proxmoxnode import ProxmoxNodeSpec, ProxmoxNodeStatus
from proxnix.proxmox.errors import PermanentError, ProxmoxError
from proxnix.reconcile.nodes import NodeDirectory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeRef:
    """The ProxmoxNode object being reconciled."""

    namespace: str
    name: str
    generation: int
    spec: dict[str, object]
    status: ProxmoxNodeStatus


@dataclass
class NodeOutcome:
    status: ProxmoxNodeStatus
    problem: str = ""
    permanent: bool = False


async def probe_node(nodes: NodeDirectory, kube: KubeApi, ref: NodeRef) -> NodeOutcome:
    """Configure the node's pool from its spec and Secret, probe it, and return the next status."""
    status = ref.status.model_copy(deep=True)
    stamp = now_rfc3339()
    gen = ref.generation

    def report(ok: bool, reason: str, message: str, *, reachable: bool | None = None) -> None:
        conds = status.conditions
        if reachable is not None:
            conds = set_condition(
                conds,
                ConditionType.NODE_REACHABLE,
                "True" if reachable else "False",
                reason,
                message,
                gen,
                now=stamp,
            )
        conds = set_condition(
            conds, ConditionType.READY, "True" if ok else "False", reason, message, gen, now=stamp
        )
        status.conditions = conds
        status.observed_generation = gen
        status.last_probe_time = stamp

    try:
        spec = ProxmoxNodeSpec.model_validate(ref.spec)
    except ValidationError as exc:
        message = "invalid spec: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        report(False, "InvalidSpec", message)
        return NodeOutcome(status, message, permanent=True)

    secret_name = spec.credentials_secret_ref.name
    try:
        secret = await kube.read_secret(ref.namespace, secret_name)
    except KubeError as exc:
        report(False, "SecretUnreadable", f"cannot read Secret {secret_name!r}: {exc}")
        return NodeOutcome(status, str(exc))
    if secret is None:
        message = f"Secret {secret_name!r} not found (keys ssh-privatekey and known_hosts)"
        report(False, "SecretNotFound", message)
        return NodeOutcome(status, message)

    try:
        handle = await nodes.configure(
            ref.namespace, ref.name, spec, secret, pinned_fingerprint=status.host_key_fingerprint
        )
        new_pool = handle.pool.stats.commands == 0
        inventory = await handle.inventory(max_age=0)
        if new_pool or not status.pve_version:
            status.pve_version = await handle.client.pve_version()
        if handle.pve_version != status.pve_version:
            handle.pve_version = status.pve_version
            handle.client.dialect = QmDialect.for_version(status.pve_version)
    except ProxmoxError as exc:
        message = str(exc)[:400]
        reason = type(exc).__name__
        status.reachable = False
        report(False, reason, message, reachable=False)
        return NodeOutcome(status, message, permanent=isinstance(exc, PermanentError))
    if handle.pool.trusted_on_first_use:
        status.host_key_fingerprint = handle.pool.host_key_fingerprint
    status.reachable = True
    status.vm_count = len(inventory.vms)
    report(
        True,
        "Reachable",
        f"{handle.node_name} answers over SSH ({spec.user}@{spec.host}:{spec.port}); {len(inventory.vms)} VMs",
        reachable=True,
    )
    return NodeOutcome(status)
