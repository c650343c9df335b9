"""`pvesh get ... --output-format json` (pve-cli-facts §10): /cluster/resources, /nodes, /cluster/nextid.

Compact key-sorted JSON. Numbers may arrive as strings on some versions; the parsers coerce what they read and
raise one ParseError (naming the command and the offending item) on anything that is not the expected shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxnix.proxmox.parsing import fail, load_json
from proxnix.proxmox.propstring import split_tags

CLUSTER_RESOURCES = "pvesh get /cluster/resources --type vm --output-format json"
NODES = "pvesh get /nodes --output-format json"
NEXTID = "pvesh get /cluster/nextid --output-format json"


@dataclass(frozen=True)
class ClusterGuest:
    """One VM or container of the cluster as pvestatd last broadcast it (status lags up to ~10 s)."""

    vmid: int
    node: str
    type: str
    status: str
    name: str = ""
    tags: tuple[str, ...] = ()
    lock: str = ""
    template: bool = False
    maxmem: int | None = None
    maxdisk: int | None = None
    maxcpu: float | None = None
    uptime: int | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterNode:
    """One node of the cluster as `/nodes` lists it."""

    node: str
    status: str
    extra: Mapping[str, object] = field(default_factory=dict)


def _int(command: str, item: Mapping[str, object], key: str, *, required: bool = False) -> int | None:
    value = item.get(key)
    if value is None:
        if required:
            fail(command, f"missing {key!r}", repr(dict(item))[:300])
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    fail(command, f"{key!r} is not an integer", repr(dict(item))[:300])


def _str(command: str, item: Mapping[str, object], key: str, *, required: bool = False) -> str:
    value = item.get(key)
    if value is None:
        if required:
            fail(command, f"missing {key!r}", repr(dict(item))[:300])
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    fail(command, f"{key!r} is not a string", repr(dict(item))[:300])


def _list_of_objects(command: str, text: str) -> list[Mapping[str, object]]:
    data = load_json(command, text)
    if not isinstance(data, list):
        fail(command, "expected a JSON array", text[:200])
    for item in data:
        if not isinstance(item, dict):
            fail(command, "expected an array of objects", repr(item)[:300])
    return data


def parse_cluster_resources(text: str, *, command: str = CLUSTER_RESOURCES) -> list[ClusterGuest]:
    """Every VM and container of the cluster (`--type vm` returns `qemu` and `lxc` entries)."""
    guests: list[ClusterGuest] = []
    for item in _list_of_objects(command, text):
        kind = _str(command, item, "type", required=True)
        if kind not in ("qemu", "lxc"):
            continue
        vmid = _int(command, item, "vmid", required=True)
        assert vmid is not None
        maxcpu = item.get("maxcpu")
        guests.append(
            ClusterGuest(
                vmid=vmid,
                node=_str(command, item, "node", required=True),
                type=kind,
                status=_str(command, item, "status") or "unknown",
                name=_str(command, item, "name"),
                tags=tuple(t.lower() for t in split_tags(_str(command, item, "tags"))),
                lock=_str(command, item, "lock"),
                template=bool(_int(command, item, "template") or 0),
                maxmem=_int(command, item, "maxmem"),
                maxdisk=_int(command, item, "maxdisk"),
                maxcpu=float(maxcpu)
                if isinstance(maxcpu, int | float) and not isinstance(maxcpu, bool)
                else None,
                uptime=_int(command, item, "uptime"),
                extra={k: v for k, v in item.items() if k not in _KNOWN_RESOURCE_KEYS},
            )
        )
    return guests


_KNOWN_RESOURCE_KEYS = frozenset(
    {
        "id",
        "type",
        "vmid",
        "node",
        "status",
        "name",
        "tags",
        "lock",
        "template",
        "maxmem",
        "maxdisk",
        "maxcpu",
        "uptime",
    }
)


def parse_nodes(text: str, *, command: str = NODES) -> list[ClusterNode]:
    return [
        ClusterNode(
            node=_str(command, item, "node", required=True),
            status=_str(command, item, "status") or "unknown",
            extra={k: v for k, v in item.items() if k not in ("node", "status")},
        )
        for item in _list_of_objects(command, text)
    ]


def parse_nextid(text: str, *, command: str = NEXTID) -> int:
    """`/cluster/nextid`: a JSON number or numeric string."""
    data = load_json(command, text)
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    if isinstance(data, str) and data.isdigit():
        return int(data)
    fail(command, "expected a VMID", text.strip()[:200])


def parse_version(text: str, *, command: str = "pvesh get /version --output-format json") -> str:
    """`/version`: `{"release": "8.4", "repoid": "...", "version": "8.4.1"}` → "8.4.1"."""
    data = load_json(command, text)
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        fail(command, "expected an object with 'version'", text.strip()[:200])
    return str(data["version"])
