"""The `proxnix` command line: one subcommand per entry point, each implemented in the module that owns it.

Subcommand modules expose `add_arguments(parser)` and `run(args) -> int`; they are imported lazily so that
`proxnix crds` does not pay for kopf or aiohttp start-up.
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="proxnix", description="GitOps for Proxmox VMs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            sp.set_defaults(_module=None, _missing=module_name)
            continue
        module.add_arguments(sp)
        sp.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = args._module
    if module is None:
        print(f"proxnix: {args.command} is not available ({args._missing} is missing)", file=sys.stderr)
        return 2
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
