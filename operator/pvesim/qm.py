"""The simulated `qm` command: the command table (arguments, options, usage lines) and dispatch.

Run as `python -m pvesim.qm ARGS` (the `qm` shim in the state folder's bin/ does this) inside a pvesim session,
with PVESIM_DIR and PVESIM_NODE set.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable

from pvesim import cliargs, schema
from pvesim.cliargs import Args
from pvesim.context import Ctx
from pvesim.errors import ParamError, PveError
from pvesim.propstr import DRIVE_NAMES
from pvesim.schema import Validator

_STR = schema.STR()
_BOOL = schema.BOOL
GUEST_COMMANDS = (
    "fsfreeze-freeze", "fsfreeze-status", "fsfreeze-thaw", "fstrim", "get-fsinfo", "get-host-name",
    "get-memory-block-info", "get-memory-blocks", "get-osinfo", "get-time", "get-timezone", "get-users",
    "get-vcpus", "info", "network-get-interfaces", "ping", "shutdown", "suspend-disk", "suspend-hybrid",
    "suspend-ram",
)  # fmt: skip


def _size(value: str, modern: bool) -> str:
    if not re.match(r"^(\+)?(\d+(\.\d+)?)([KMGT])?$", value):
        raise ValueError("value does not match the regex pattern")
    return value


class Command:
    """One qm command: its words, positional parameters, options and implementation (`module:function`,
    imported only when the command runs, to keep the start-up of every qm call light)."""

    def __init__(
        self,
        words: tuple[str, ...],
        positional: tuple[tuple[str, Validator], ...],
        run: str,
        options: dict[str, Validator] | None = None,
        vm_options: bool = False,
    ) -> None:
        self.words = words
        self.positional = positional
        self.run = run
        self.options: dict[str, Validator] = options or {}
        self.vm_options = vm_options

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

    def implementation(self) -> Callable[[Ctx, Args], int]:
        module, _, function = self.run.partition(":")
        func: Callable[[Ctx, Args], int] = getattr(importlib.import_module(f"pvesim.{module}"), function)
        return func


_VMID = (("vmid", schema.VMID),)
_SKIPLOCK = {"skiplock": _BOOL}
_DISK_ENUM = schema.ENUM(*DRIVE_NAMES)

_TABLE = [
    Command(("list",), (), "qm_read:cmd_list", {"full": _BOOL}),
    Command(("config",), _VMID, "qm_read:cmd_config", {"current": _BOOL, "snapshot": _STR}),
    Command(("status",), _VMID, "qm_read:cmd_status", {"verbose": _BOOL}),
    Command(("pending",), _VMID, "qm_read:cmd_pending"),
    Command(("create",), _VMID, "qm_create:cmd_create", dict(schema.CREATE_OPTIONS), vm_options=True),
    Command(("set",), _VMID, "qm_set:cmd_set", dict(schema.SET_OPTIONS), vm_options=True),
    Command(
        ("disk", "import"),
        (*_VMID, ("source", _STR), ("storage", _STR)),
        "qm_disk:cmd_import",
        {"format": schema.ENUM("raw", "qcow2", "vmdk"), "target-disk": _DISK_ENUM},
    ),
    Command(
        ("disk", "resize"),
        (*_VMID, ("disk", _DISK_ENUM), ("size", _size)),
        "qm_disk:cmd_resize",
        {"digest": _STR, **_SKIPLOCK},
    ),
    Command(
        ("start",), _VMID, "qm_power:cmd_start", {"timeout": schema.INT(0), "machine": _STR, **_SKIPLOCK}
    ),
    Command(
        ("stop",),
        _VMID,
        "qm_power:cmd_stop",
        {"timeout": schema.INT(0), "keepActive": _BOOL, "overrule-shutdown": _BOOL, **_SKIPLOCK},
    ),
    Command(
        ("shutdown",),
        _VMID,
        "qm_power:cmd_shutdown",
        {"timeout": schema.INT(0), "forceStop": _BOOL, "keepActive": _BOOL, **_SKIPLOCK},
    ),
    Command(("reboot",), _VMID, "qm_power:cmd_reboot", {"timeout": schema.INT(0)}),
    Command(
        ("suspend",), _VMID, "qm_power:cmd_suspend", {"todisk": _BOOL, "statestorage": _STR, **_SKIPLOCK}
    ),
    Command(("resume",), _VMID, "qm_power:cmd_resume", {"nocheck": _BOOL, **_SKIPLOCK}),
    Command(
        ("destroy",),
        _VMID,
        "qm_power:cmd_destroy",
        {"purge": _BOOL, "destroy-unreferenced-disks": _BOOL, **_SKIPLOCK},
    ),
    Command(("guest", "cmd"), (*_VMID, ("command", schema.ENUM(*GUEST_COMMANDS))), "qm_guest:cmd_guest"),
    Command(
        ("migrate",),
        (*_VMID, ("target", _STR)),
        "qm_migrate:cmd_migrate",
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
    Command(("unlock",), _VMID, "qm_set:cmd_unlock"),
]
COMMANDS: dict[tuple[str, ...], Command] = {c.words: c for c in _TABLE}
ALIASES = {("importdisk",): ("disk", "import"), ("resize",): ("disk", "resize"), ("agent",): ("guest", "cmd")}


def find(argv: list[str], modern_disk_commands: bool = True) -> tuple[Command, list[str]] | None:
    """The command named by the first words of `argv` (`qm disk ...` exists from PVE 7.3 on)."""
    for length in (2, 1):
        words = tuple(argv[:length])
        if words[:1] == ("disk",) and not modern_disk_commands:
            continue
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
    found = find(argv, ctx.settings.at_least("7.3"))
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
        return command.implementation()(ctx, args)
    except ParamError as exc:
        raise exc.with_usage(command.usage) from None


def main(argv: list[str] | None = None) -> int:
    from pvesim.invoke import run

    return run("qm", list(sys.argv[1:] if argv is None else argv), dispatch)


if __name__ == "__main__":
    sys.exit(main())
