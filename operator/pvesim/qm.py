"""The simulated `qm` command: the command table (arguments, options, usage lines) and dispatch.

Run as `python -m pvesim.qm ARGS` (the `qm` shim in the state folder's bin/ does this) inside a pvesim session,
with PVESIM_DIR and PVESIM_NODE set.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from pvesim import cliargs, schema
from pvesim.cliargs import Args
from pvesim.context import Ctx
from pvesim.errors import ParamError, PveError
from pvesim.propstr import DRIVE_NAMES
from pvesim.qm_create import cmd_create
from pvesim.qm_disk import cmd_import, cmd_resize
from pvesim.qm_guest import COMMANDS as GUEST_COMMANDS
from pvesim.qm_guest import cmd_guest
from pvesim.qm_migrate import cmd_migrate
from pvesim.qm_power import (
    cmd_destroy,
    cmd_reboot,
    cmd_resume,
    cmd_shutdown,
    cmd_start,
    cmd_stop,
    cmd_suspend,
)
from pvesim.qm_read import cmd_config, cmd_list, cmd_pending, cmd_status
from pvesim.qm_set import cmd_set, cmd_unlock
from pvesim.schema import Validator

_STR = schema.STR()
_BOOL = schema.BOOL


def _size(value: str, modern: bool) -> str:
    if not re.match(r"^(\+)?(\d+(\.\d+)?)([KMGT])?$", value):
        raise ValueError("value does not match the regex pattern")
    return value


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    positional: tuple[tuple[str, Validator], ...]
    run: Callable[[Ctx, Args], int]
    options: dict[str, Validator] = field(default_factory=dict)
    vm_options: bool = False

    @property
    def usage(self) -> str:
        args = " ".join(f"<{name}>" for name, _ in self.positional)
        text = "qm " + " ".join(self.words) + " " + args
        if self.options or self.vm_options:
            text += " [OPTIONS]"
        return text.rstrip()

    def lookup(self, name: str) -> Validator | None:
        if name in self.options:
            return self.options[name]
        if self.vm_options:
            return schema.vm_validator(name)
        return None


_VMID = (("vmid", schema.VMID),)
_SKIPLOCK = {"skiplock": _BOOL}
_DISK_ENUM = schema.ENUM(*DRIVE_NAMES)

_TABLE = [
    Command(("list",), (), cmd_list, {"full": _BOOL}),
    Command(("config",), _VMID, cmd_config, {"current": _BOOL, "snapshot": _STR}),
    Command(("status",), _VMID, cmd_status, {"verbose": _BOOL}),
    Command(("pending",), _VMID, cmd_pending),
    Command(("create",), _VMID, cmd_create, dict(schema.CREATE_OPTIONS), vm_options=True),
    Command(("set",), _VMID, cmd_set, dict(schema.SET_OPTIONS), vm_options=True),
    Command(
        ("disk", "import"),
        (*_VMID, ("source", _STR), ("storage", _STR)),
        cmd_import,
        {"format": schema.ENUM("raw", "qcow2", "vmdk"), "target-disk": _DISK_ENUM},
    ),
    Command(
        ("disk", "resize"),
        (*_VMID, ("disk", _DISK_ENUM), ("size", _size)),
        cmd_resize,
        {"digest": _STR, **_SKIPLOCK},
    ),
    Command(("start",), _VMID, cmd_start, {"timeout": schema.INT(0), "machine": _STR, **_SKIPLOCK}),
    Command(
        ("stop",),
        _VMID,
        cmd_stop,
        {"timeout": schema.INT(0), "keepActive": _BOOL, "overrule-shutdown": _BOOL, **_SKIPLOCK},
    ),
    Command(
        ("shutdown",),
        _VMID,
        cmd_shutdown,
        {"timeout": schema.INT(0), "forceStop": _BOOL, "keepActive": _BOOL, **_SKIPLOCK},
    ),
    Command(("reboot",), _VMID, cmd_reboot, {"timeout": schema.INT(0)}),
    Command(("suspend",), _VMID, cmd_suspend, {"todisk": _BOOL, "statestorage": _STR, **_SKIPLOCK}),
    Command(("resume",), _VMID, cmd_resume, {"nocheck": _BOOL, **_SKIPLOCK}),
    Command(
        ("destroy",),
        _VMID,
        cmd_destroy,
        {"purge": _BOOL, "destroy-unreferenced-disks": _BOOL, **_SKIPLOCK},
    ),
    Command(("guest", "cmd"), (*_VMID, ("command", schema.ENUM(*GUEST_COMMANDS))), cmd_guest),
    Command(
        ("migrate",),
        (*_VMID, ("target", _STR)),
        cmd_migrate,
        {
            "online": _BOOL,
            "with-local-disks": _BOOL,
            "force": _BOOL,
            "targetstorage": _STR,
            "bwlimit": schema.INT(0),
            "migration_type": schema.ENUM("secure", "insecure"),
            "migration_network": _STR,
        },
    ),
    Command(("unlock",), _VMID, cmd_unlock),
]
COMMANDS: dict[tuple[str, ...], Command] = {c.words: c for c in _TABLE}
ALIASES = {("importdisk",): ("disk", "import"), ("resize",): ("disk", "resize"), ("agent",): ("guest", "cmd")}


def find(argv: list[str]) -> tuple[Command, list[str]] | None:
    for length in (2, 1):
        words = tuple(argv[:length])
        if words in COMMANDS:
            return COMMANDS[words], argv[length:]
        if words in ALIASES:
            real = COMMANDS[ALIASES[words]]
            return Command(words, real.positional, real.run, real.options, real.vm_options), argv[length:]
    return None


def usage_all() -> str:
    lines = ["USAGE: qm <COMMAND> [ARGS] [OPTIONS]"]
    lines += [f"       {c.usage}" for c in sorted(_TABLE, key=lambda c: c.words)]
    return "\n".join(lines)


def dispatch(ctx: Ctx, argv: list[str]) -> int:
    found = find(argv)
    if found is None:
        words = " ".join(argv[:1])
        raise PveError(f"ERROR: unknown command 'qm {words}'\n{usage_all()}" if words else usage_all())
    command, rest = found
    args = cliargs.parse(
        rest,
        tuple(name for name, _ in command.positional),
        lambda n: schema.kind_of(command.lookup(n)),
        command.usage,
    )
    values = {**{name: args.positional[name] for name, _ in command.positional}, **args.options}
    validators = dict(command.positional)
    normalised = schema.validate(
        values, lambda n: validators.get(n) or command.lookup(n), ctx.modern, command.usage
    )
    args.options = {name: normalised[name] for name in args.options}
    try:
        return command.run(ctx, args)
    except ParamError as exc:
        raise exc.with_usage(command.usage) from None


def main(argv: list[str] | None = None) -> int:
    from pvesim.invoke import run

    return run("qm", list(sys.argv[1:] if argv is None else argv), dispatch)


if __name__ == "__main__":
    sys.exit(main())
