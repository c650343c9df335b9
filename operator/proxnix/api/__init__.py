"""The proxnix API (group `proxnix.io`, version `v1alpha1`): pydantic models of every spec and status.

These models are the single source of truth: the CRDs in `crds/` are generated from them (`proxnix crds`), and every
value that later reaches a remote shell is validated here first.
"""

from proxnix.api.conditions import Condition
from proxnix.api.gitrepo import GitRepoSpec, GitRepoStatus
from proxnix.api.meta import API_VERSION, GROUP, VERSION
from proxnix.api.proxmoxnode import ProxmoxNodeSpec, ProxmoxNodeStatus
from proxnix.api.proxmoxvm import ProxmoxVMSpec, ProxmoxVMStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Condition",
    "GitRepoSpec",
    "GitRepoStatus",
    "ProxmoxNodeSpec",
    "ProxmoxNodeStatus",
    "ProxmoxVMSpec",
    "ProxmoxVMStatus",
]
