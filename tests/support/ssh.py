"""An SSH pool built straight from a ProxmoxNode spec and its Secret's data, for tests that bypass the operator's
node directory (the operator builds its pools in `proxnix.reconcile.node_directory.NodeDirectory.configure`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

from proxnix.adapters import ssh_pool
from proxnix.adapters.ssh_pool import PoolSettings, SshCredentials, SshTarget
from proxnix.api.proxmoxnode import HostKeyPolicy, ProxmoxNodeSpec

__all__ = ["PoolSettings", "SshCredentials", "SshPool"]


class SshPool(ssh_pool.SshPool):
    """`proxnix.adapters.ssh_pool.SshPool` with `for_node`."""

    @classmethod
    def for_node(
        cls,
        spec: ProxmoxNodeSpec,
        secret_data: Mapping[str, bytes | str],
        *,
        node_name: str,
        recorded_fingerprint: str = "",
        settings: PoolSettings | None = None,
    ) -> SshPool:
        """The pool of a ProxmoxNode: its host/port/user/maxSessions, the Secret's key and known_hosts, and its
        hostKeyPolicy (`recorded_fingerprint`: status.hostKeyFingerprint, pinned under TrustOnFirstUse)."""
        tofu = spec.host_key_policy == HostKeyPolicy.TRUST_ON_FIRST_USE
        credentials = SshCredentials.from_secret(
            secret_data,
            trust_on_first_use=tofu,
            pinned_fingerprint=recorded_fingerprint if tofu else "",
        )
        base = settings or PoolSettings()
        tuned = PoolSettings(**{**asdict(base), "max_sessions": spec.max_sessions})
        return cls(SshTarget(spec.host, spec.port, spec.user, node_name), credentials, tuned)
