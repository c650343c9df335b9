"""What the simulated QEMU guest agent answers (`qm guest cmd`), derived from the VM config.

The guest's IPv4 address is the static `ipconfig0` address when one is set, else a DHCP-like address derived
from the VMID: 10.<node index>.<vmid / 250>.<vmid % 250 + 2>/24.
"""

from __future__ import annotations

from typing import Any

from pvesim.propstr import PropError, parse_net, split_propstr


def ipv4_address(vmid: int, node_index: int, conf: dict[str, str]) -> tuple[str, int]:
    try:
        ip = split_propstr(conf.get("ipconfig0", ""), None).get("ip", "dhcp")
    except PropError:
        ip = "dhcp"
    if ip != "dhcp" and "/" in ip:
        address, prefix = ip.split("/", 1)
        return address, int(prefix)
    return f"10.{node_index % 256}.{(vmid // 250) % 256}.{vmid % 250 + 2}", 24


def network_interfaces(vmid: int, node_index: int, conf: dict[str, str]) -> list[dict[str, Any]]:
    lo = {
        "hardware-address": "00:00:00:00:00:00",
        "ip-addresses": [
            {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
            {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128},
        ],
        "name": "lo",
        "statistics": _stats(0),
    }
    result = [lo]
    for i in range(32):
        value = conf.get(f"net{i}")
        if value is None:
            continue
        try:
            mac = parse_net(value, True)["macaddr"].lower()
        except PropError:
            continue
        iface: dict[str, Any] = {"hardware-address": mac, "name": f"ens{18 + i}", "statistics": _stats(i + 1)}
        octets = mac.split(":")
        eui = (
            f"fe80::{int(octets[0], 16) ^ 2:x}{octets[1]}:{octets[2]}ff:fe{octets[3]}:{octets[4]}{octets[5]}"
        )
        addresses = [{"ip-address": eui.replace(":0", ":"), "ip-address-type": "ipv6", "prefix": 64}]
        if i == 0:
            address, prefix = ipv4_address(vmid, node_index, conf)
            addresses.insert(0, {"ip-address": address, "ip-address-type": "ipv4", "prefix": prefix})
        iface["ip-addresses"] = addresses
        result.append(iface)
    return result


def _stats(seed: int) -> dict[str, int]:
    return {
        "rx-bytes": 1000 * seed,
        "rx-dropped": 0,
        "rx-errs": 0,
        "rx-packets": 10 * seed,
        "tx-bytes": 800 * seed,
        "tx-dropped": 0,
        "tx-errs": 0,
        "tx-packets": 8 * seed,
    }


def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address of a MAC address."""
    import ipaddress

    raw = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([raw[0] ^ 2]) + raw[1:3] + b"\xff\xfe" + raw[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui))
