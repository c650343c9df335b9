"""Errors of the simulated tools and how they reach the client (message, stream, exit code).

- `PveError`: a direct error. qm prints the message on stderr and exits with errno (if one is known) or 255.
- `ParamError`: `400 Parameter verification failed.`, one `<param>: <msg>` line per parameter (sorted), a blank
  line and the usage line; exit 255.
- `UsageError`: other `400 ...` command-line errors (`not enough arguments`, `unable to parse option`) + usage.
- Errors raised inside a task (see `pvesim.context.Ctx.task`) are printed on stderr with newlines turned into
  spaces and exit 255.
"""

from __future__ import annotations

ENOENT = 2
DEFAULT_RC = 255


class PveError(Exception):
    """An error the real tool reports with `message` on stderr and exit code `rc`."""

    def __init__(self, message: str, rc: int = DEFAULT_RC) -> None:
        super().__init__(message)
        self.message = message.rstrip("\n")
        self.rc = rc

    def render(self) -> str:
        return self.message + "\n"


class ParamError(PveError):
    """A parameter verification failure (HTTP 400), printed with the usage line of the command."""

    def __init__(self, errors: dict[str, str], usage: str | None = None) -> None:
        self.errors = dict(errors)
        self.usage = usage
        lines = ["400 Parameter verification failed."]
        lines += [f"{key}: {self.errors[key]}" for key in sorted(self.errors)]
        super().__init__("\n".join(lines))

    def with_usage(self, usage: str) -> ParamError:
        if self.usage is None:
            self.usage = usage
        return self

    def render(self) -> str:
        text = self.message + "\n"
        if self.usage:
            text += "\n" + self.usage + "\n"
        return text


class UsageError(PveError):
    """A command-line error other than parameter verification: `400 <msg>` plus the usage line."""

    def __init__(self, message: str, usage: str | None = None, prefix: str = "") -> None:
        super().__init__(f"400 {message}")
        self.usage = usage
        self.prefix = prefix

    def render(self) -> str:
        text = self.prefix + self.message + "\n"
        if self.usage:
            text += "\n" + self.usage + "\n"
        return text


class TaskError(PveError):
    """A failure inside a task: message with newlines as spaces, exit 255."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.strip("\n").split("\n")), DEFAULT_RC)


def config_missing(node: str, vmid: int) -> PveError:
    return PveError(f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist", ENOENT)


def config_not_on_node(node: str, vmid: int) -> PveError:
    return PveError(f"unable to find configuration file for VM {vmid} on node '{node}'", ENOENT)
