"""Proxmox property strings and the value formats built on them: sizes, drives, network devices, boot order.

Printing follows `PVE::JSONSchema::print_property_string`: the default key's value first without `key=`, then the
other keys in alphabetical order. Sizes print with `format_size` (largest exact unit: 528K, 4M, 32G, 1T).
"""

from __future__ import annotations

import os
import re

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
_UNITS = {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": TIB}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$")


class PropError(ValueError):
    """Errors of one property string: `{"": "format error", "sub": "msg"}` → `key: ...`, `key.sub: ...`."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors

    def for_param(self, param: str) -> dict[str, str]:
        result: dict[str, str] = {}
        for sub, msg in self.errors.items():
            result[f"{param}.{sub}" if sub else param] = msg
        return result


def parse_size(text: str) -> int | None:
    """`32G`, `512M`, `1.5G`, `1024` (bytes) → bytes; None when malformed."""
    match = _SIZE_RE.match(text.strip())
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_size(size: int) -> str:
    kb, rest = divmod(size, 1024)
    if rest:
        return str(size)
    mb, rest = divmod(kb, 1024)
    if rest:
        return f"{kb}K"
    gb, rest = divmod(mb, 1024)
    if rest:
        return f"{mb}M"
    tb, rest = divmod(gb, 1024)
    if rest:
        return f"{gb}G"
    return f"{tb}T"


def split_propstr(value: str, default_key: str | None) -> dict[str, str]:
    """Split `a,b=c,d=e` into a dict (a bare value goes to `default_key`). Raises PropError."""
    result: dict[str, str] = {}
    for part in value.split(","):
        if part == "":
            continue
        if "=" in part:
            key, _, val = part.partition("=")
        else:
            if default_key is None or default_key in result:
                raise PropError(
                    {
                        "": "format error",
                        default_key or "": "value without key, but schema does not define a default key",
                    }
                )
            key, val = default_key, part
        if key in result:
            raise PropError({"": "format error", key: "duplicate key in comma-separated list property"})
        result[key] = val
    return result


def print_propstr(data: dict[str, str], default_key: str | None) -> str:
    parts = []
    if default_key and default_key in data:
        parts.append(data[default_key])
    parts += [f"{k}={data[k]}" for k in sorted(data) if k != default_key]
    return ",".join(parts)


def check_keys(data: dict[str, str], allowed: set[str] | frozenset[str]) -> None:
    bad = {
        k: "property is not defined in schema and the schema does not allow additional properties"
        for k in data
        if k not in allowed
    }
    if bad:
        raise PropError({"": "format error", **bad})


# --- drives ---------------------------------------------------------------------------------------------

BUSES = {"ide": 4, "scsi": 31, "virtio": 16, "sata": 6}
DRIVE_NAMES: tuple[str, ...] = (
    *(f"{bus}{i}" for bus in ("ide", "scsi", "virtio", "sata") for i in range(BUSES[bus])),
    "efidisk0",
    "tpmstate0",
)
BOOT_DRIVE_NAMES = DRIVE_NAMES[:-2]
_DRIVE_SET = frozenset(DRIVE_NAMES)
_UNUSED_RE = re.compile(r"^unused(\d+)$")
DRIVE_KEYS = frozenset(
    {
        "file",
        "aio",
        "backup",
        "cache",
        "detect_zeroes",
        "discard",
        "format",
        "import-from",
        "iothread",
        "iops",
        "iops_rd",
        "iops_wr",
        "mbps",
        "mbps_rd",
        "mbps_wr",
        "media",
        "model",
        "queues",
        "replicate",
        "ro",
        "rerror",
        "werror",
        "serial",
        "shared",
        "size",
        "snapshot",
        "ssd",
        "wwn",
        "efitype",
        "pre-enrolled-keys",
        "version",
    }
)
_BOOL_DRIVE_KEYS = ("backup", "iothread", "replicate", "ro", "shared", "snapshot", "ssd")


def is_drive_name(key: str) -> bool:
    return key in _DRIVE_SET


def is_unused_name(key: str) -> bool:
    match = _UNUSED_RE.match(key)
    return bool(match) and int(match.group(1)) < 256 if match else False


def drive_order_key(key: str) -> int:
    """Position of a drive name in qemu-server's `valid_drive_names` order (unusedN last)."""
    if key in _DRIVE_SET:
        return DRIVE_NAMES.index(key)
    match = _UNUSED_RE.match(key)
    return len(DRIVE_NAMES) + (int(match.group(1)) if match else 999)


class Drive:
    """A drive option: the volume (`file`) and its other keys."""

    def __init__(self, file: str, opts: dict[str, str] | None = None) -> None:
        self.file = file
        self.opts: dict[str, str] = opts if opts is not None else {}

    @property
    def is_cdrom(self) -> bool:
        return self.opts.get("media") == "cdrom"

    @property
    def size(self) -> int | None:
        value = self.opts.get("size")
        return parse_size(value) if value is not None else None

    def print(self) -> str:
        data = dict(self.opts)
        if "size" in data:
            parsed = parse_size(data["size"])
            if parsed is not None:
                data["size"] = format_size(parsed)
        data["file"] = self.file
        return print_propstr(data, "file")


def parse_drive(value: str) -> Drive:
    data = split_propstr(value, "file")
    check_keys(data, DRIVE_KEYS)
    if "file" not in data:
        raise PropError({"": "format error", "file": "property is missing and it is not optional"})
    errors: dict[str, str] = {}
    for key in _BOOL_DRIVE_KEYS:
        if key in data:
            normal = normalize_bool(data[key])
            if normal is None:
                errors[key] = f"type check ('boolean') failed - got '{data[key]}'"
            else:
                data[key] = normal
    if "size" in data and parse_size(data["size"]) is None:
        errors["size"] = "unable to parse size"
    if "media" in data and data["media"] not in ("cdrom", "disk"):
        errors["media"] = f"value '{data['media']}' does not have a value in the enumeration 'cdrom, disk'"
    if "discard" in data and data["discard"] not in ("ignore", "on"):
        errors["discard"] = f"value '{data['discard']}' does not have a value in the enumeration 'ignore, on'"
    if errors:
        raise PropError({"": "format error", **errors})
    file = data.pop("file")
    if file == "cdrom":
        data["media"] = "cdrom"
    return Drive(file, data)


def normalize_bool(value: str) -> str | None:
    lowered = value.lower()
    if lowered in ("1", "on", "yes", "true"):
        return "1"
    if lowered in ("0", "off", "no", "false"):
        return "0"
    return None


# --- network devices ------------------------------------------------------------------------------------

NET_MODELS = (
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
)
NET_KEYS = frozenset(
    {"model", "macaddr", "bridge", "firewall", "link_down", "mtu", "queues", "rate", "tag", "trunks"}
)
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def random_mac(modern: bool) -> str:
    if modern:  # PVE 8.1+: the Proxmox OUI
        return "BC:24:11:" + ":".join(f"{b:02X}" for b in os.urandom(3))
    octets = list(os.urandom(6))
    octets[0] = (octets[0] & 0xFE) | 0x02
    return ":".join(f"{b:02X}" for b in octets)


def parse_net(value: str, modern_mac: bool) -> dict[str, str]:
    """Parse `virtio[=MAC],bridge=vmbr0,...`; returns keys model, macaddr and options. Raises PropError."""
    data: dict[str, str] = {}
    for part in value.split(","):
        if not part:
            continue
        key, sep, val = part.partition("=")
        if key in NET_MODELS:
            data["model"] = key
            if sep:
                data["macaddr"] = val
        elif not sep:
            raise PropError(
                {
                    "": "format error",
                    "model": f"value '{key}' does not have a value in the enumeration "
                    f"'{', '.join(NET_MODELS)}'",
                }
            )
        else:
            data[key] = val
    check_keys(data, NET_KEYS)
    if "model" not in data:
        raise PropError({"": "format error", "model": "property is missing and it is not optional"})
    if "macaddr" in data and not _MAC_RE.match(data["macaddr"]):
        raise PropError({"": "format error", "macaddr": "value does not look like a valid MAC address"})
    data.setdefault("macaddr", random_mac(modern_mac))
    data["macaddr"] = data["macaddr"].upper()
    if "firewall" in data:
        data["firewall"] = normalize_bool(data["firewall"]) or data["firewall"]
    return data


def print_net(data: dict[str, str]) -> str:
    head = f"{data['model']}={data['macaddr']}"
    rest = [f"{k}={data[k]}" for k in sorted(data) if k not in ("model", "macaddr")]
    return ",".join([head, *rest])


# --- boot order -----------------------------------------------------------------------------------------


def parse_boot_order(value: str) -> list[str] | None:
    """Devices of `order=a;b;c`; None for the legacy `cdn` form or an empty value."""
    data = split_propstr(value, "legacy")
    order = data.get("order")
    if order is None:
        return None
    return [dev for dev in order.split(";") if dev]


def default_boot_order(conf: dict[str, str]) -> str:
    """`order=<first disk>;<first cdrom>;<first net>` as written by `qm create` (empty when nothing)."""
    devices: list[str] = []
    for want_cdrom in (False, True):
        for name in BOOT_DRIVE_NAMES:
            if name in conf:
                try:
                    drive = parse_drive(conf[name])
                except PropError:
                    continue
                if drive.is_cdrom == want_cdrom:
                    devices.append(name)
                    break
    for i in range(32):
        if f"net{i}" in conf:
            devices.append(f"net{i}")
            break
    return "order=" + ";".join(devices) if devices else ""


def boot_disks(conf: dict[str, str]) -> list[str]:
    boot = conf.get("boot", "")
    try:
        order = parse_boot_order(boot) if boot else None
    except PropError:
        order = None
    if order is not None:
        return order
    legacy = conf.get("bootdisk")
    return [legacy] if legacy else []


def bootdisk_size(conf: dict[str, str]) -> int:
    """`size=` of the first non-cdrom disk in the boot order (0 when none)."""
    for name in boot_disks(conf):
        if not is_drive_name(name) or name not in conf:
            continue
        try:
            drive = parse_drive(conf[name])
        except PropError:
            continue
        if drive.is_cdrom or not drive.file:
            continue
        return drive.size or 0
    return 0


def memory_mib(conf: dict[str, str]) -> int:
    value = conf.get("memory", "512")
    try:
        data = split_propstr(value, "current")
        return int(data.get("current", "512"))
    except (PropError, ValueError):
        return 512
