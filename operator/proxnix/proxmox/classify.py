"""Error classification: a failed command's exit status and output → the driver exception controllers act on.

The rules follow pve-cli-facts §0 and §4-§12: messages come on stderr (task errors with newlines turned into spaces),
exit codes vary (errno, or 255), so classification is by message text, first match wins. Anything unrecognised is a
`CommandFailed` (permanent: reported verbatim, not retried forever).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from proxnix.proxmox.errors import (
    AgentNotConfigured,
    AgentNotRunning,
    CommandFailed,
    ConfigChanged,
    DiskNotFound,
    DiskShrinkRefused,
    ErrorContext,
    ImageError,
    InvalidParameter,
    LockTimeout,
    NoQuorum,
    OperationTimeout,
    PermanentError,
    ProtectionEnabled,
    ProxmoxError,
    StorageError,
    VmidConflict,
    VmLocked,
    VmNotFound,
    WrongPowerState,
)

MAX_MESSAGE = 500

Factory = Callable[[re.Match[str], str, ErrorContext], ProxmoxError]


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    make: Factory


def _simple(cls: type[ProxmoxError]) -> Factory:
    def make(m: re.Match[str], message: str, ctx: ErrorContext) -> ProxmoxError:
        return cls(message, **ctx)

    return make


def _locked(m: re.Match[str], message: str, ctx: ErrorContext) -> ProxmoxError:
    return VmLocked(message, lock=m.group(1), **ctx)


def _conflict(m: re.Match[str], message: str, ctx: ErrorContext) -> ProxmoxError:
    vmid = m.groupdict().get("vmid")
    return VmidConflict(
        message, vmid=int(vmid) if vmid else None, other_node=m.groupdict().get("node") or "", **ctx
    )


def _not_found(m: re.Match[str], message: str, ctx: ErrorContext) -> ProxmoxError:
    vmid = m.groupdict().get("vmid")
    return VmNotFound(message, vmid=int(vmid) if vmid else None, **ctx)


def _invalid(m: re.Match[str], message: str, ctx: ErrorContext) -> ProxmoxError:
    return InvalidParameter(message, params=parse_parameter_errors(ctx.get("stderr", "")), **ctx)


# First match wins: locks and timeouts before the generic "does not exist" family.
RULES: tuple[Rule, ...] = tuple(
    Rule(re.compile(p, re.MULTILINE), f)
    for p, f in (
        (r"can't lock file '[^']*' - got timeout", _simple(LockTimeout)),
        (r"VM is locked \(([\w-]+)\)", _locked),
        (r"cluster not ready - no quorum", _simple(NoQuorum)),
        (r"checksum mismatch", _simple(ConfigChanged)),
        (r"QEMU guest agent is not running", _simple(AgentNotRunning)),
        (r"got timeout", _simple(OperationTimeout)),
        (r"^400 Parameter verification failed", _invalid),
        (r"(?:VM (?P<vmid>\d+) )?already exists on node '(?P<node>[^']+)'", _conflict),
        (r"^vmid: VM (?P<vmid>\d+) already exists", _conflict),
        (r"protection mode enabled", _simple(ProtectionEnabled)),
        (r"shrinking disks is not supported", _simple(DiskShrinkRefused)),
        (r"disk '[^']+' does not exist", _simple(DiskNotFound)),
        (r"Configuration file 'nodes/[^/]+/qemu-server/(?P<vmid>\d+)\.conf' does not exist", _not_found),
        (r"unable to find configuration file for VM (?P<vmid>\d+)", _not_found),
        (r"No QEMU guest agent configured", _simple(AgentNotConfigured)),
        (
            r"VM \d+ (is )?not running|VM \d+ (is )?already running|VM \d+ is running|VM is paused",
            _simple(WrongPowerState),
        ),
        (
            r"non-existent or non-regular file|'import-from' requires|could not open|unable to parse .*image",
            _simple(ImageError),
        ),
        (r"storage '?[^' ]+'? does not (exist|support)|no such storage", _simple(StorageError)),
        (r"invalid format - |value does not look like", _invalid),
        (r"you can't start a vm if it's a template|you can't resize a cdrom", _simple(PermanentError)),
    )
)


def _message_lines(stderr: str, stdout: str) -> list[str]:
    text = stderr if stderr.strip() else stdout
    lines = [line.strip() for line in text.replace("\r", "").split("\n")]
    # `trying to acquire lock...` is printed without a newline before the real message.
    return [line.removeprefix("trying to acquire lock...").strip() for line in lines if line.strip()]


def summarize(stderr: str, stdout: str = "") -> str:
    """The human-readable error text: stderr's meaningful lines (usage lines dropped), bounded."""
    lines = [
        line
        for line in _message_lines(stderr, stdout)
        if line and not line.startswith(("qm ", "pvesh ", "USAGE:", "Task finished with"))
    ]
    message = "; ".join(lines) or "command failed without an error message"
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def parse_parameter_errors(stderr: str) -> dict[str, str]:
    """`<param>: <msg>` lines of a `400 Parameter verification failed.` block, up to the blank line."""
    params: dict[str, str] = {}
    lines = stderr.replace("\r", "").split("\n")
    started = False
    for line in lines:
        if line.startswith("400 Parameter verification failed"):
            started = True
            continue
        if not started:
            m = re.match(r"^([a-z][\w-]*): (invalid format - .*|value does not look like.*)$", line)
            if m:
                params[m.group(1)] = m.group(2)
            continue
        if not line.strip():
            break
        m = re.match(r"^([\w\[\]-]+): (.*)$", line)
        if m:
            params[m.group(1)] = m.group(2)
    return params


def classify_failure(
    command: str, exit_status: int | None, stdout: str, stderr: str, *, node: str = ""
) -> ProxmoxError:
    """The exception for a command that exited non-zero (or printed an error on a zero exit where that matters)."""
    ctx: ErrorContext = {"command": command, "node": node, "exit_status": exit_status, "stderr": stderr}
    message = summarize(stderr, stdout)
    haystacks = [stderr, stdout] if stderr.strip() else [stdout]
    for rule in RULES:
        for hay in haystacks:
            m = rule.pattern.search(hay)
            if m:
                return rule.make(m, message, ctx)
    return CommandFailed(message, **ctx)


def stderr_error(stderr: str) -> str | None:
    """An error a zero-exit command reported (e.g. a failed resize task, pve-cli-facts §6), or None."""
    for line in _message_lines(stderr, ""):
        if re.search(r"shrinking disks|does not exist|got timeout|VM is locked|error", line, re.IGNORECASE):
            return line
    return None
