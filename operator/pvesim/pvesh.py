"""The simulated `pvesh` command: `pvesh get` on the API paths the operator uses, with `--output-format`.

Paths: /cluster/resources [--type vm|node|storage], /cluster/nextid [--vmid], /nodes, /nodes/<n>/qemu,
/nodes/<n>/qemu/<id>/config [--current], /nodes/<n>/qemu/<id>/status/current, /version.
`json` output is compact and key-sorted; `json-pretty` is Perl's pretty JSON; `text` is a simple table.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from pvesim import cliargs, faults, runtime, schema
from pvesim.cliargs import Args
from pvesim.conffile import VmConf
from pvesim.context import Ctx
from pvesim.errors import ParamError, PveError
from pvesim.render import compact_json, perl_json_pretty
from pvesim.storage import NodeStorage
from pvesim.vmstatus import cpus, vm_status

USAGE = "pvesh get <api_path> [OPTIONS] [FORMAT_OPTIONS]"
FORMAT_OPTIONS: dict[str, schema.Validator] = {
    "output-format": schema.ENUM("json", "json-pretty", "text", "yaml"),
    "noborder": schema.BOOL,
    "noheader": schema.BOOL,
    "human-readable": schema.BOOL,
    "quiet": schema.BOOL,
}
INT_KEYS = frozenset(
    {
        "acpi",
        "autostart",
        "balloon",
        "ciupgrade",
        "cores",
        "cpuunits",
        "freeze",
        "keephugepages",
        "kvm",
        "localtime",
        "migrate_speed",
        "numa",
        "onboot",
        "protection",
        "reboot",
        "shares",
        "sockets",
        "tablet",
        "template",
        "vcpus",
    }
)
NUMBER_KEYS = frozenset({"cpulimit", "migrate_downtime"})
NODE_MAXMEM = 64 * 1024**3
NODE_MAXDISK = 100 * 1024**3


def _fingerprint(node: str) -> str:
    raw = hashlib.sha256(node.encode(), usedforsecurity=False).hexdigest().upper()
    return ":".join(raw[i : i + 2] for i in range(0, 64, 2))


def _node_online(ctx: Ctx, node: str) -> bool:
    return not faults.load(ctx.layout, node).down


def _check_node(ctx: Ctx, node: str) -> None:
    if node not in ctx.nodes:
        raise PveError(
            f"hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
        )
    if not _node_online(ctx, node):
        raise PveError(f"500 Can't connect to {node}:8006 (No route to host)")


def _node_entry(ctx: Ctx, node: str, full: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": f"node/{node}", "type": "node", "node": node}
    if not _node_online(ctx, node):
        entry["status"] = "offline"
        return entry
    entry.update(
        {
            "status": "online",
            "uptime": int(time.time() - ctx.layout.cluster_file.stat().st_ctime) + 3600,
            "cpu": 0.0123,
            "maxcpu": 8,
            "mem": NODE_MAXMEM // 4,
            "maxmem": NODE_MAXMEM,
            "disk": NODE_MAXDISK // 10,
            "maxdisk": NODE_MAXDISK,
            "level": "",
        }
    )
    if full:
        entry["ssl_fingerprint"] = _fingerprint(node)
    else:
        entry["cgroup-mode"] = 2
    return entry


def _vm_entry(ctx: Ctx, vmid: int, node: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": f"qemu/{vmid}", "type": "qemu", "vmid": vmid, "node": node}
    try:
        conf = ctx.store.read(vmid, node).main
    except PveError:
        entry["status"] = "unknown"
        return entry
    for key in ("tags", "lock"):
        if key in conf:
            entry[key] = conf[key]
    ctime = re.search(r"ctime=(\d+)", conf.get("meta", ""))
    young = (
        ctime is not None
        and time.time() - int(ctime.group(1)) < ctx.layout.settings(node, ctx.cluster).statd_lag
    )
    if young or not _node_online(ctx, node):
        entry["status"] = "unknown"
        return entry
    stat = vm_status(
        vmid, conf, runtime.get(ctx.layout, vmid, node), ctx.layout.settings(node, ctx.cluster).pve_version
    )
    entry.update(
        {
            "status": stat["status"],
            "name": stat["name"],
            "uptime": stat["uptime"],
            "maxcpu": stat["cpus"],
            "cpu": stat.get("cpu", 0),
            "maxmem": stat["maxmem"],
            "mem": stat["mem"],
            "maxdisk": stat["maxdisk"],
            "disk": 0,
            "netin": stat["netin"],
            "netout": stat["netout"],
            "diskread": stat["diskread"],
            "diskwrite": stat["diskwrite"],
            "template": 1 if conf.get("template") == "1" else 0,
        }
    )
    return entry


def _storage_entries(ctx: Ctx, node: str) -> list[dict[str, Any]]:
    storage = NodeStorage(ctx.layout, node, ctx.settings, ctx)
    result = []
    for storeid, sdef in sorted(storage.defs.items()):
        if not sdef.on_node(node):
            continue
        entry: dict[str, Any] = {
            "id": f"storage/{node}/{storeid}",
            "type": "storage",
            "node": node,
            "storage": storeid,
            "plugintype": sdef.type,
            "content": ",".join(sorted(sdef.content)),
            "shared": 0,
            "status": "available" if _node_online(ctx, node) else "unknown",
        }
        if _node_online(ctx, node):
            entry.update({"disk": 0, "maxdisk": NODE_MAXDISK})
        result.append(entry)
    return result


def get_resources(ctx: Ctx, args: Args, path: list[str]) -> Any:
    kind = args.options.get("type")
    result: list[dict[str, Any]] = []
    if kind in (None, "vm"):
        result += [_vm_entry(ctx, vmid, node) for vmid, node in ctx.store.all_vms().items()]
    if kind in (None, "node"):
        result += [_node_entry(ctx, node, full=False) for node in ctx.nodes]
    if kind in (None, "storage"):
        for node in ctx.nodes:
            result += _storage_entries(ctx, node)
    return result


def get_nextid(ctx: Ctx, args: Args, path: list[str]) -> Any:
    used = ctx.store.all_vms()
    wanted = args.options.get("vmid")
    if wanted is not None:
        if int(wanted) in used:
            raise ParamError({"vmid": f"VM {wanted} already exists"}, USAGE)
        return wanted
    for vmid in range(100, 1_000_000):
        if vmid not in used:
            return str(vmid)
    raise PveError("unable to get any free VMID in range [100, 1000000]")


def get_nodes(ctx: Ctx, args: Args, path: list[str]) -> Any:
    return [_node_entry(ctx, node, full=True) for node in ctx.nodes]


def get_qemu_list(ctx: Ctx, args: Args, path: list[str]) -> Any:
    node = path[1]
    _check_node(ctx, node)
    result = []
    for vmid in ctx.store.vmids(node):
        conf = ctx.store.read(vmid, node).main
        stat = vm_status(vmid, conf, runtime.get(ctx.layout, vmid, node), ctx.settings.pve_version)
        stat.pop("nics", None)
        stat.pop("ballooninfo", None)
        result.append(stat)
    return result


def typed_config(values: dict[str, str], modern: bool) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in values.items():
        if key == "cipassword":
            result[key] = "**********"
        elif key in INT_KEYS or (key == "memory" and not modern):
            result[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
        elif key in NUMBER_KEYS:
            try:
                number = float(value)
                result[key] = int(number) if number.is_integer() else number
            except ValueError:
                result[key] = value
        else:
            result[key] = value
    return result


def get_vm_config(ctx: Ctx, args: Args, path: list[str]) -> Any:
    node, vmid = path[1], path[3]
    _check_node(ctx, node)
    if not schema.VMID_RE.match(vmid):
        raise ParamError({"vmid": "invalid format - value does not look like a valid VM ID"}, USAGE)
    conf: VmConf = ctx.store.read(int(vmid), node)
    values = dict(conf.main) if args.flag("current") else conf.merged()
    result = typed_config(values, ctx.layout.settings(node, ctx.cluster).at_least("8.1"))
    result["digest"] = conf.digest
    return result


def get_vm_status(ctx: Ctx, args: Args, path: list[str]) -> Any:
    node, vmid = path[1], int(path[3])
    _check_node(ctx, node)
    conf = ctx.store.read(vmid, node).main
    stat = vm_status(vmid, conf, runtime.get(ctx.layout, vmid, node), ctx.settings.pve_version)
    stat["cpus"] = cpus(conf)
    if conf.get("agent"):
        stat["agent"] = 1
    return stat


def get_version(ctx: Ctx, args: Args, path: list[str]) -> Any:
    version = ctx.settings.pve_version
    return {"release": version, "repoid": "c2b1e5a0", "version": f"{version}.0"}


Handler = Callable[[Ctx, Args, list[str]], Any]
ROUTES: list[tuple[re.Pattern[str], Handler, dict[str, schema.Validator]]] = [
    (
        re.compile(r"^cluster/resources$"),
        get_resources,
        {"type": schema.ENUM("vm", "storage", "node", "sdn")},
    ),
    (re.compile(r"^cluster/nextid$"), get_nextid, {"vmid": schema.INT(100, 999999999)}),
    (re.compile(r"^nodes$"), get_nodes, {}),
    (re.compile(r"^nodes/[^/]+/qemu$"), get_qemu_list, {"full": schema.BOOL}),
    (
        re.compile(r"^nodes/[^/]+/qemu/[^/]+/config$"),
        get_vm_config,
        {"current": schema.BOOL, "snapshot": schema.STR()},
    ),
    (re.compile(r"^nodes/[^/]+/qemu/[^/]+/status/current$"), get_vm_status, {}),
    (re.compile(r"^(nodes/[^/]+/)?version$"), get_version, {}),
]


def _text(value: Any, args: Args) -> str:
    if isinstance(value, list | dict):
        rows = (
            value if isinstance(value, list) else [{"key": k, "value": v} for k, v in sorted(value.items())]
        )
        if not rows:
            return ""
        columns = sorted({key for row in rows for key in row})
        cells = [[_cell(row.get(col)) for col in columns] for row in rows]
        widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
        lines = []
        if not args.flag("noheader"):
            lines.append(" ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
        lines += [" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
        return "\n".join(lines) + "\n"
    return _cell(value) + "\n"


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def dispatch(ctx: Ctx, argv: list[str]) -> int:
    if not argv or argv[0] != "get":
        verb = argv[0] if argv else ""
        raise PveError(
            f"ERROR: unknown command 'pvesh {verb}'\nUSAGE: pvesh <COMMAND> [ARGS] [OPTIONS]\n       {USAGE}"
        )
    rest = argv[1:]
    path_arg = next((a for a in rest if not a.startswith("-")), None)
    path = (path_arg or "").strip("/")
    route = next(((h, o) for p, h, o in ROUTES if p.match(path)), None)
    options = {**FORMAT_OPTIONS, **(route[1] if route else {})}
    args = cliargs.parse(rest, ("api_path",), lambda n: schema.kind_of(options.get(n)), USAGE)
    args.options = schema.validate(args.options, options.get, ctx.modern, USAGE)
    if route is None:
        raise PveError(f"No 'get' handler defined for '{args.positional['api_path']}'")
    result = route[0](ctx, args, path.split("/"))
    fmt = args.options.get("output-format", "text")
    if fmt == "json":
        ctx.out.write(compact_json(result))
    elif fmt == "json-pretty":
        ctx.out.write(perl_json_pretty(result))
    elif fmt == "yaml":
        ctx.out.write("---\n" + compact_json(result))
    else:
        ctx.out.write(_text(result, args))
    return 0


def main(argv: list[str] | None = None) -> int:
    from pvesim.invoke import run

    return run("pvesh", list(sys.argv[1:] if argv is None else argv), dispatch)


if __name__ == "__main__":
    sys.exit(main())
