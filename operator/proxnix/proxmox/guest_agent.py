"""`qm guest cmd <vmid> network-get-interfaces` (pve-cli-facts §9): Perl pretty JSON, a list of interfaces with
`hardware-address`, `ip-addresses` (`ip-address`, `ip-address-type`, `prefix`), `name`, `statistics`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from proxnix.proxmox.parsing import fail, load_json


@dataclass(frozen=True)
class GuestAddress:
    address: str
    family: str  # ipv4 | ipv6
    prefix: int | None


@dataclass(frozen=True)
class GuestInterface:
    name: str
    mac: str
    addresses: tuple[GuestAddress, ...]


def parse_network_interfaces(
    text: str, *, command: str = "qm guest cmd network-get-interfaces"
) -> list[GuestInterface]:
    data = load_json(command, text)
    if isinstance(data, dict) and "result" in data:
        data = data["result"]
    if not isinstance(data, list):
        fail(command, "expected a JSON array of interfaces", text.strip()[:200])
    interfaces: list[GuestInterface] = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            fail(command, "interface without a name", repr(item)[:300])
        raw_addresses = item.get("ip-addresses", [])
        if not isinstance(raw_addresses, list):
            fail(command, "'ip-addresses' is not a list", repr(item)[:300])
        addresses: list[GuestAddress] = []
        for addr in raw_addresses:
            if not isinstance(addr, dict) or not isinstance(addr.get("ip-address"), str):
                fail(command, "address without 'ip-address'", repr(addr)[:300])
            prefix = addr.get("prefix")
            addresses.append(
                GuestAddress(
                    address=addr["ip-address"],
                    family=str(addr.get("ip-address-type", "")),
                    prefix=prefix if isinstance(prefix, int) and not isinstance(prefix, bool) else None,
                )
            )
        mac = item.get("hardware-address", "")
        interfaces.append(
            GuestInterface(
                name=item["name"], mac=mac if isinstance(mac, str) else "", addresses=tuple(addresses)
            )
        )
    return interfaces


def routable_addresses(interfaces: Sequence[GuestInterface]) -> list[str]:
    """Addresses worth showing: IPv4 first, then IPv6, each once; loopback, link-local and unspecified addresses
    left out (a zone suffix `%eth0` is dropped); the guest's order otherwise kept."""
    v4: list[str] = []
    v6: list[str] = []
    for iface in interfaces:
        for addr in iface.addresses:
            try:
                ip = ipaddress.ip_address(addr.address.split("%", 1)[0])
            except ValueError:
                continue
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
                continue
            (v4 if ip.version == 4 else v6).append(str(ip))
    return list(dict.fromkeys(v4 + v6))
