"""The driver's exception hierarchy: what went wrong talking to a Proxmox node, and whether retrying can help.

Controllers map the two families: `TransientError` (retry with backoff: a lock, a backup, a dropped connection, a
timeout) and `PermanentError` (report and stall until the spec or the node changes: bad parameters, a VMID owned by
someone else, protection, a parse failure). `classify.py` turns a failed command's output into one of these.

Every exception carries the command (as shown to a user, never containing secrets), the node and, when known, the
exit status and the remote error text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict, Unpack


class ErrorContext(TypedDict, total=False):
    """Where an error happened: the keyword arguments every driver error accepts."""

    command: str
    node: str
    exit_status: int | None
    stderr: str


class ProxmoxError(Exception):
    """Base of every driver error."""

    #: Whether running the same command again later may succeed.
    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        command: str = "",
        node: str = "",
        exit_status: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.command = command
        self.node = node
        self.exit_status = exit_status
        self.stderr = stderr

    @property
    def reason(self) -> str:
        """The CamelCase reason a condition or Event shows for this error (the class name unless it says otherwise;
        one spelling per problem, whether the plan or the node found it)."""
        return type(self).__name__

    def __str__(self) -> str:
        where = f" on node {self.node}" if self.node else ""
        what = f" ({self.command})" if self.command else ""
        return f"{self.message}{where}{what}"


class TransientError(ProxmoxError):
    """Retrying later may succeed.

    `ambiguous` is True when the command may have taken effect before the failure (a connection lost or a timeout
    after the command was sent): only idempotent operations may be retried blindly after such a failure.
    """

    transient = True
    ambiguous: bool = False


class PermanentError(ProxmoxError):
    """Retrying the same command will not help; something must change first (the spec, the node, a human)."""


# --- transient ---------------------------------------------------------------------------------------------------


class LockTimeout(TransientError):
    """The per-VM config lock could not be taken in time (`can't lock file ... - got timeout`)."""


class VmLocked(TransientError):
    """The VM carries a config lock (`VM is locked (backup)`); `lock` names it."""

    def __init__(self, message: str, *, lock: str = "", **kwargs: Unpack[ErrorContext]) -> None:
        super().__init__(message, **kwargs)
        self.lock = lock


class NoQuorum(TransientError):
    """The cluster has no quorum; /etc/pve is read-only."""


class ConfigChanged(TransientError):
    """The config changed between read and write (`checksum mismatch`)."""


class OperationTimeout(TransientError):
    """Proxmox gave up waiting for something (`VM quit/powerdown failed - got timeout`)."""


class AgentNotRunning(TransientError):
    """The guest agent is configured but not answering yet (the guest is booting)."""


class ConnectionLost(TransientError):
    """The SSH connection dropped. `ambiguous` tells whether the command may already have run."""

    def __init__(self, message: str, *, ambiguous: bool = True, **kwargs: Unpack[ErrorContext]) -> None:
        super().__init__(message, **kwargs)
        self.ambiguous = ambiguous


class NodeUnreachable(TransientError):
    """The node could not be reached (connection refused, timed out, DNS)."""


class CommandTimeout(TransientError):
    """The command did not finish within its timeout; the remote process was killed."""

    ambiguous = True


class TransferFailed(TransientError):
    """An image transfer failed or the uploaded file did not verify."""

    ambiguous = True


# --- permanent ---------------------------------------------------------------------------------------------------


class InvalidParameter(PermanentError):
    """`400 Parameter verification failed.`: `params` maps each rejected parameter to Proxmox's reason."""

    def __init__(
        self, message: str, *, params: Mapping[str, str] | None = None, **kwargs: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **kwargs)
        self.params = dict(params or {})


class VmidConflict(PermanentError):
    """The VMID is already used (`already exists on node 'x'`); `other_node` names where."""

    def __init__(
        self, message: str, *, vmid: int | None = None, other_node: str = "", **kwargs: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **kwargs)
        self.vmid = vmid
        self.other_node = other_node

    @property
    def reason(self) -> str:
        return "VMIDConflict"  # as the plan reports a VMID held by another VM


class VmNotFound(PermanentError):
    """No VM with this VMID on this node (`Configuration file ... does not exist`)."""

    def __init__(self, message: str, *, vmid: int | None = None, **kwargs: Unpack[ErrorContext]) -> None:
        super().__init__(message, **kwargs)
        self.vmid = vmid


class NotOwned(PermanentError):
    """The VM does not carry this operator's ownership marker for the expected object: the driver refuses to touch it."""

    def __init__(
        self, message: str, *, vmid: int | None = None, found_uid: str = "", **kwargs: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **kwargs)
        self.vmid = vmid
        self.found_uid = found_uid


class ProtectionEnabled(PermanentError):
    """The VM has Proxmox's `protection: 1`; it cannot be destroyed (or its disks removed)."""


class DiskShrinkRefused(PermanentError):
    """Proxmox does not shrink disks."""


class DiskNotFound(PermanentError):
    """The named disk slot does not exist on the VM."""


class WrongPowerState(PermanentError):
    """The command does not apply in the VM's current power state (running for destroy, stopped for reboot, ...)."""


class AgentNotConfigured(PermanentError):
    """The VM has no guest agent configured (`agent: 1` missing)."""


class ImageError(PermanentError):
    """An image file is missing, unreadable, or its checksum does not match the expected one."""


class StorageError(PermanentError):
    """A storage does not exist or cannot hold VM images."""


class HostKeyMismatch(PermanentError):
    """The node's SSH host key is not the one in known_hosts (or none is configured and TOFU is off)."""


class AuthenticationFailed(PermanentError):
    """The node refused the SSH key."""


class PoolClosed(TransientError):
    """The node's SSH pool was closed (operator shutdown, or the node's settings changed and a new pool replaced it)."""


class CommandFailed(PermanentError):
    """A command failed with an error text the driver does not recognise (reported verbatim, not retried)."""


class ParseError(PermanentError):
    """Output the driver could not understand. `line` is the offending line (or an excerpt)."""

    def __init__(self, message: str, *, line: str = "", **kwargs: Unpack[ErrorContext]) -> None:
        super().__init__(message, **kwargs)
        self.line = line

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}: offending line {self.line!r}" if self.line else base


def is_transient(exc: BaseException) -> bool:
    """Whether a retry later may succeed (False for anything not a ProxmoxError)."""
    return isinstance(exc, ProxmoxError) and exc.transient
