"""The `proxnix` command line: one subcommand per entry point, each implemented in the module that owns it.

Subcommand modules expose `add_arguments(parser)` and `run(args) -> int`. Only the chosen subcommand's module is
imported, so `proxnix crds` does not pay for kopf or aiohttp start-up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "crds": ("proxnix.api.crdgen", "generate (or --check) the CustomResourceDefinitions in crds/"),
    "operator": ("proxnix.handlers.main", "run the operator (kopf) against the current kubeconfig"),
    "webhook": ("proxnix.webhook.main", "run the push-webhook sidecar"),
}


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """The parser; only the `chosen` subcommand's module is imported to add its arguments."""
    parser = argparse.ArgumentParser(prog="proxnix", description="GitOps for Proxmox VMs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sp)
            sp.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    args = build_parser(chosen if chosen in SUBCOMMANDS else None).parse_args(args_list)
    result: int = args._module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
