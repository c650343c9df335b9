"""The status record of one VM (PVE::QemuServer::vmstatus) built from its config and runtime state, as used by
`qm list`, `qm status --verbose` and pvesh's /cluster/resources.
"""

from __future__ import annotations

from typing import Any

from pvesim.propstr import MIB, bootdisk_size, memory_mib
from pvesim.runtime import RunState

QEMU_VERSIONS = {
    "7.0": "6.2.0",
    "7.1": "6.2.0",
    "7.2": "7.0.0",
    "7.3": "7.1.0",
    "7.4": "7.2.0",
    "8.0": "8.0.2",
    "8.1": "8.1.2",
    "8.2": "8.1.5",
    "8.3": "9.0.2",
    "8.4": "9.2.0",
}


def qemu_version(pve_version: str) -> str:
    return QEMU_VERSIONS.get(pve_version, "9.0.2")


def cpus(conf: dict[str, str]) -> int:
    if "vcpus" in conf and conf["vcpus"].isdigit():
        return int(conf["vcpus"])
    sockets = int(conf["sockets"]) if conf.get("sockets", "").isdigit() else 1
    cores = int(conf["cores"]) if conf.get("cores", "").isdigit() else 1
    return sockets * cores


def vm_status(vmid: int, conf: dict[str, str], run: RunState | None, pve_version: str) -> dict[str, Any]:
    """The full status record (`qm status --verbose` keys). `conf` holds the values in effect."""
    maxmem = memory_mib(conf) * MIB
    stat: dict[str, Any] = {
        "vmid": vmid,
        "name": conf.get("name") or f"VM {vmid}",
        "status": "running" if run else "stopped",
        "qmpstatus": run.status if run else "stopped",
        "cpus": cpus(conf),
        "maxmem": maxmem,
        "maxdisk": bootdisk_size(conf),
        "disk": 0,
        "mem": 0,
        "uptime": 0,
        "diskread": 0,
        "diskwrite": 0,
        "netin": 0,
        "netout": 0,
    }
    for key in ("lock", "tags"):
        if key in conf:
            stat[key] = conf[key]
    if conf.get("template") == "1":
        stat["template"] = 1
    if run:
        uptime = run.uptime
        stat.update(
            {
                "pid": run.pid,
                "uptime": uptime,
                "cpu": 0.0123,
                "mem": maxmem * 2 // 5,
                "diskread": 52_428_800 + uptime * 4096,
                "diskwrite": 10_485_760 + uptime * 2048,
                "netin": 1500 * uptime,
                "netout": 800 * uptime,
                "running-machine": "pc-i440fx-"
                + ".".join(qemu_version(pve_version).split(".")[:2])
                + "+pve0",
                "running-qemu": qemu_version(pve_version),
                "nics": {f"tap{vmid}i0": {"netin": 1500 * uptime, "netout": 800 * uptime}}
                if "net0" in conf
                else {},
            }
        )
        if conf.get("balloon", "") != "0":
            stat["balloon"] = maxmem
            stat["ballooninfo"] = {
                "actual": maxmem,
                "max_mem": maxmem,
                "total_mem": maxmem - 64 * MIB,
                "free_mem": maxmem // 2,
                "last_update": int(run.started) + uptime,
            }
    return stat
