"""`qm guest cmd` / `qm agent`: the guest agent of a running VM answers `agent_delay` seconds after start."""

from __future__ import annotations

import time
from typing import Any

from pvesim import runtime
from pvesim.cliargs import Args
from pvesim.context import Ctx
from pvesim.errors import PveError
from pvesim.guest import network_interfaces
from pvesim.propstr import PropError, normalize_bool, split_propstr
from pvesim.render import perl_json_pretty


def agent_enabled(conf: dict[str, str]) -> bool:
    try:
        value = split_propstr(conf.get("agent", "0"), "enabled").get("enabled", "0")
    except PropError:
        return False
    return normalize_bool(value) == "1"


def cmd_guest(ctx: Ctx, args: Args) -> int:
    vmid = int(args.positional["vmid"])
    command = args.positional["command"]
    conf = ctx.store.read(vmid).main
    if not agent_enabled(conf):
        raise PveError("No QEMU guest agent configured")
    run = runtime.get(ctx.layout, vmid, ctx.node)
    if run is None:
        raise PveError(f"VM {vmid} is not running")
    ready = run.status == "running" and time.time() - run.started >= ctx.settings.agent_delay
    if not ready or ctx.fault("noagent"):
        time.sleep(ctx.settings.agent_ping_timeout)
        raise PveError("QEMU guest agent is not running")
    result: Any
    if command == "network-get-interfaces":
        result = network_interfaces(vmid, ctx.nodes.index(ctx.node) + 1, conf)
    elif command == "get-host-name":
        result = {"host-name": conf.get("name", f"VM{vmid}")}
    elif command == "get-osinfo":
        result = {
            "id": "nixos",
            "kernel-release": "6.6.63",
            "machine": "x86_64",
            "name": "NixOS",
            "version-id": "24.11",
        }
    elif command == "ping":
        return 0
    else:
        result = {}
    ctx.out.write(perl_json_pretty(result))
    return 0
