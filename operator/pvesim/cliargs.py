"""Command-line parsing as PVE's CLI handler does it (Getopt::Long in permute mode + positional arguments).

Options are `--key value`, `--key=value` or `-key value`, anywhere on the line; boolean options take an optional
value (`--full` = `--full 1`); the remaining words fill the positional parameters in order. Errors:
`Unknown option: x` + `400 unable to parse option`, `400 not enough arguments`, `400 too many arguments`, each
followed by the usage line.
"""

from __future__ import annotations

from collections.abc import Callable

from pvesim.errors import UsageError


class Args:
    def __init__(self) -> None:
        self.positional: dict[str, str] = {}
        self.options: dict[str, str] = {}
        self.order: list[str] = []  # option names in command-line order

    def flag(self, name: str) -> bool:
        value = self.options.get(name)
        return value is not None and value.lower() in ("1", "on", "yes", "true")


def parse(
    argv: list[str],
    positional: tuple[str, ...],
    option_kind: Callable[[str], str | None],
    usage: str,
) -> Args:
    """`option_kind(name)` returns "bool" for optional-value options, another string for options with a
    mandatory value, or None for unknown options."""
    args = Args()
    rest: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            rest += argv[i:]
            break
        if len(word) > 1 and word.startswith("-") and not _is_number(word):
            name = word.lstrip("-")
            value: str | None = None
            if "=" in name:
                name, _, value = name.partition("=")
            kind = option_kind(name)
            if kind is None:
                raise UsageError("unable to parse option", usage, prefix=f"Unknown option: {name}\n")
            if value is None:
                if kind == "bool":
                    if i < len(argv) and not argv[i].startswith("-"):
                        value = argv[i]
                        i += 1
                    else:
                        value = "1"
                else:
                    if i >= len(argv):
                        raise UsageError(
                            "unable to parse option", usage, prefix=f"Option {name} requires an argument\n"
                        )
                    value = argv[i]
                    i += 1
            elif value == "" and kind == "bool":
                value = "1"
            args.options[name] = value
            if name in args.order:
                args.order.remove(name)
            args.order.append(name)
        else:
            rest.append(word)
    for name in positional:
        if not rest:
            raise UsageError("not enough arguments", usage)
        args.positional[name] = rest.pop(0)
    if rest:
        raise UsageError("too many arguments", usage)
    return args


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
