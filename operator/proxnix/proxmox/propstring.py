"""Proxmox value syntaxes: property strings (`local-lvm:vm-100-disk-0,size=32G`), sizes, tags, percent-encoded text.

Pure functions; each raises ValueError on malformed input, which the parsers turn into a ParseError naming the
command and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGT]?)$")
_UNIT = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_TAG_SPLIT = re.compile(r"[;, ]+")
# Keys of config entries that are disks (slot names) in a VM config.
DRIVE_KEY = re.compile(r"^(scsi|virtio|sata|ide)[0-9]{1,2}$|^(efidisk|tpmstate)0$|^unused[0-9]+$")
NET_KEY = re.compile(r"^net[0-9]+$")
NET_MODELS = (
    "virtio",
    "e1000",
    "e1000e",
    "rtl8139",
    "vmxnet3",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
)


def decode_text(text: str) -> str:
    """Undo Proxmox's `encode_text` (percent-encoding of control chars, non-ASCII, `:` and `%`)."""
    return unquote(text, encoding="utf-8", errors="replace")


def encode_text(text: str) -> str:
    """Proxmox's `encode_text`: percent-encode everything outside printable ASCII, plus `:` and `%`."""
    safe = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ":%")
    return quote(text, safe=safe, encoding="utf-8")


def parse_size(text: str) -> int:
    """`32G`, `4M`, `528K`, `1T` or plain bytes → bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"invalid size {text!r}")
    return int(float(m.group(1)) * _UNIT[m.group(2)])


def format_gib(size_bytes: int) -> float:
    return size_bytes / 1024**3


def parse_property_string(text: str, default_key: str | None = None) -> dict[str, str]:
    """`a=1,b=2` (with an optional leading bare value for `default_key`) → dict. Keys are kept as written."""
    result: dict[str, str] = {}
    if text == "":
        return result
    for index, item in enumerate(text.split(",")):
        if "=" in item:
            key, value = item.split("=", 1)
            if not key:
                raise ValueError(f"empty key in property string {text!r}")
        elif default_key is not None and index == 0:
            key, value = default_key, item
        else:
            raise ValueError(f"bare value {item!r} in property string {text!r}")
        if key in result:
            raise ValueError(f"duplicate key {key!r} in property string {text!r}")
        result[key] = value
    return result


def split_tags(text: str) -> list[str]:
    """Tags as Proxmox stores them (`;`, `,` or space separated) → list, order kept, empties dropped."""
    return [t for t in _TAG_SPLIT.split(text.strip()) if t]


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "on", "true"):
        return True
    if value in ("0", "no", "off", "false"):
        return False
    raise ValueError(f"invalid boolean {text!r}")


@dataclass(frozen=True)
class Drive:
    """A disk entry: `local-lvm:vm-100-disk-0,discard=on,size=32G,ssd=1` (or `none,media=cdrom`)."""

    volume: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def storage(self) -> str:
        return self.volume.split(":", 1)[0] if ":" in self.volume else ""

    @property
    def size_bytes(self) -> int | None:
        size = self.options.get("size")
        return parse_size(size) if size is not None else None

    @property
    def is_cdrom(self) -> bool:
        return self.options.get("media") == "cdrom"

    @property
    def is_cloudinit(self) -> bool:
        return self.volume.endswith("-cloudinit") or "cloudinit" in self.volume.rsplit("/", 1)[-1]

    @classmethod
    def parse(cls, text: str) -> Drive:
        props = parse_property_string(text, default_key="file")
        volume = props.pop("file", "")
        if not volume:
            raise ValueError(f"drive without a volume: {text!r}")
        return cls(volume=volume, options=props)


@dataclass(frozen=True)
class NetDevice:
    """A NIC entry: `virtio=BC:24:11:2A:3B:4C,bridge=vmbr0,firewall=1`."""

    model: str
    mac: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return self.options.get("bridge", "")

    @classmethod
    def parse(cls, text: str) -> NetDevice:
        props = parse_property_string(text)
        model = next((k for k in props if k in NET_MODELS), props.get("model", ""))
        if not model:
            raise ValueError(f"network device without a model: {text!r}")
        mac = props.pop(model, "") if model in props else props.pop("macaddr", "")
        props.pop("model", None)
        return cls(model=model, mac=mac, options=props)


def parse_boot_order(text: str) -> list[str]:
    """`order=scsi0;ide2;net0` → ['scsi0', 'ide2', 'net0']; legacy `cdn` style and empty → []."""
    props = parse_property_string(text, default_key="legacy") if text else {}
    order = props.get("order", "")
    return [d for d in order.split(";") if d]
