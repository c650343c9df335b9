"""The `pvesim` command: start/stop a simulated cluster, inject faults, tune settings, read call logs.

    pvesim up --nodes N --dir DIR [--latency S] [--faults SPEC] [--pve-version V|NODE=V ...] [--set KEY=VALUE ...]
    pvesim down --dir DIR
    pvesim info --dir DIR
    pvesim reset --dir DIR
    pvesim fault --dir DIR [--node NODE] [--clear] [--list] [SPEC]
    pvesim node --dir DIR NODE down|up|freeze|thaw
    pvesim tune --dir DIR [--node NODE] KEY=VALUE ...
    pvesim calls --dir DIR [--node NODE] [--sessions] [--json]
    pvesim ssh --dir DIR NODE [COMMAND ...]

`up` prints one JSON document (`{"nodes": [{"name", "host", "port", "user", "identityFile", "knownHostsFile"}],
"dir"}`) and exits; the sshd daemons keep running until `down`. SPEC syntax: see `pvesim.faults`.
Settings (`--set`/`tune`): see `pvesim.layout.Settings`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pvesim import calllog, control, faults
from pvesim.layout import SETTING_NAMES, Settings


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    key = key.replace("-", "_")
    if not sep or key not in SETTING_NAMES:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY one of {', '.join(SETTING_NAMES)}")
    default = getattr(Settings(), key)
    try:
        return key, type(default)(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key} needs a {type(default).__name__}, got {value!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pvesim", description="Simulated Proxmox VE nodes reached over real SSH."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--dir",
            default=os.environ.get("PVESIM_STATE_DIR"),
            required="PVESIM_STATE_DIR" not in os.environ,
            help="state folder of the cluster (default: $PVESIM_STATE_DIR)",
        )
        return p

    p = with_dir(sub.add_parser("up", help="create/start a cluster and print its JSON description"))
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every qm/pvesh call")
    p.add_argument("--faults", default=None, help="fault SPEC (see pvesim.faults)")
    p.add_argument(
        "--pve-version",
        action="append",
        default=[],
        metavar="V|NODE=V",
        help="PVE version of all nodes, or of one node (repeatable)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="KEY=VALUE",
        help="a node setting for all nodes, e.g. lock_timeout=2 agent_delay=1",
    )
    with_dir(sub.add_parser("down", help="stop every node (idempotent)"))
    with_dir(sub.add_parser("info", help="print the JSON description again"))
    with_dir(sub.add_parser("reset", help="forget all VMs, volumes, faults and call logs"))
    p = with_dir(sub.add_parser("fault", help="add, list or clear fault rules of a running cluster"))
    p.add_argument("--node", default=None)
    p.add_argument("--clear", action="store_true", help="remove rules first (and bring down nodes back up)")
    p.add_argument("--list", action="store_true")
    p.add_argument("spec", nargs="?", default=None)
    p = with_dir(
        sub.add_parser(
            "node", help="take a node down (refuses connections), freeze it (hangs), or bring it back"
        )
    )
    p.add_argument("node")
    p.add_argument("state", choices=("down", "up", "freeze", "thaw"))
    p = with_dir(sub.add_parser("tune", help="change settings of a running cluster"))
    p.add_argument("--node", default=None)
    p.add_argument("values", nargs="+", type=_setting, metavar="KEY=VALUE")
    p = with_dir(sub.add_parser("calls", help="print the call log"))
    p.add_argument("--node", default=None)
    p.add_argument("--sessions", action="store_true", help="SSH sessions instead of qm/pvesh calls")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p = with_dir(sub.add_parser("ssh", help="run ssh to a node with the cluster's key and known_hosts"))
    p.add_argument("node")
    p.add_argument("remote", nargs=argparse.REMAINDER)
    return parser


def _versions(values: list[str]) -> dict[str, str] | str | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    result: dict[str, str] = {}
    for value in values:
        node, sep, version = value.partition("=")
        if not sep:
            raise control.PvesimError(f"--pve-version: mix of global and per-node values: {values}")
        result[node] = version
    return result


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    state_dir: str = args.dir
    if args.command == "up":
        info = control.up(
            state_dir,
            nodes=args.nodes,
            latency=args.latency,
            faults_spec=args.faults,
            pve_versions=_versions(args.pve_version),
            settings=dict(args.set),
        )
        print(info.to_json())
    elif args.command == "down":
        control.down(state_dir)
    elif args.command == "info":
        print(control.info(state_dir).to_json())
    elif args.command == "reset":
        control.reset(state_dir)
    elif args.command == "fault":
        if args.clear:
            control.clear_faults(state_dir, args.node)
        if args.spec:
            control.add_faults(state_dir, args.spec, args.node)
        if args.list or not (args.clear or args.spec):
            for node, rules in control.list_faults(state_dir).items():
                for rule in rules:
                    print(f"{node}\t#{rule.id}\t{rule.describe()}")
    elif args.command == "node":
        if args.state in ("freeze", "thaw"):
            control.set_node_frozen(state_dir, args.node, args.state == "freeze")
        else:
            control.set_node_down(state_dir, args.node, args.state == "down")
    elif args.command == "tune":
        control.tune(state_dir, args.node, **dict(args.values))
    elif args.command == "calls":
        if args.sessions:
            for s in calllog.read_sessions(state_dir, args.node):
                print(
                    json.dumps(s._asdict())
                    if args.json
                    else f"{s.ts:.0f}\t{s.node}\trc={s.rc}\t{s.duration:.2f}s\t{s.command}"
                )
        else:
            for c in calllog.read(state_dir, args.node):
                if args.json:
                    print(json.dumps(c._asdict()))
                else:
                    fault = f"\tfault={c.fault}" if c.fault else ""
                    print(f"{c.ts:.3f}\t{c.node}\trc={c.rc}\t{c.duration:.3f}s\t{c.command}{fault}")
    elif args.command == "ssh":
        target = control.info(state_dir).node(args.node)
        os.execvp("ssh", ["ssh", *target.ssh_args(), *args.remote])  # noqa: S606 - replaces this process on purpose
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except (control.PvesimError, faults.SpecError, KeyError) as exc:
        print(f"pvesim: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
