"""Parameter schema of `qm create` / `qm set` and friends: which options exist and how values are verified.

Messages follow PVE::JSONSchema: `type check ('integer') failed - got 'x'`, `value must have a minimum value of
16`, `value 'x' does not have a value in the enumeration 'a, b'`, `invalid format - <reason>`; property strings add
`<key>.<sub>: <reason>` lines under `<key>: invalid format - format error`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pvesim.errors import ParamError
from pvesim.propstr import (
    NET_MODELS,
    PropError,
    is_drive_name,
    normalize_bool,
    parse_drive,
    parse_net,
    split_propstr,
)

Validator = Callable[[str, bool], str]
"""(value, modern) → normalised value; raises ValueError(message) or PropError. `modern` = PVE 8.1+."""

VMID_RE = re.compile(r"^[1-9][0-9]{2,8}$")
_DNS_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?"
DNS_RE = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
TAG_RE = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.IGNORECASE)
SCSIHW = ("lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi")
OSTYPES = (
    "other",
    "wxp",
    "w2k",
    "w2k3",
    "w2k8",
    "wvista",
    "win7",
    "win8",
    "win10",
    "win11",
    "l24",
    "l26",
    "solaris",
)


def _int(minimum: int | None = None, maximum: int | None = None) -> Validator:
    def check(value: str, modern: bool) -> str:
        if not re.fullmatch(r"[+-]?\d+", value):
            raise ValueError(f"type check ('integer') failed - got '{value}'")
        number = int(value)
        if minimum is not None and number < minimum:
            raise ValueError(f"value must have a minimum value of {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"value must have a maximum value of {maximum}")
        return str(number)

    return check


def _number(minimum: float | None = None, maximum: float | None = None) -> Validator:
    def check(value: str, modern: bool) -> str:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"type check ('number') failed - got '{value}'") from None
        if minimum is not None and number < minimum:
            raise ValueError(f"value must have a minimum value of {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"value must have a maximum value of {maximum}")
        return value

    return check


def _bool(value: str, modern: bool) -> str:
    normal = normalize_bool(value)
    if normal is None:
        raise ValueError(f"type check ('boolean') failed - got '{value}'")
    return normal


def _enum(*values: str) -> Validator:
    def check(value: str, modern: bool) -> str:
        if value not in values:
            raise ValueError(
                f"value '{value}' does not have a value in the enumeration '{', '.join(values)}'"
            )
        return value

    return check


def _str(max_length: int | None = None) -> Validator:
    def check(value: str, modern: bool) -> str:
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"value may only be {max_length} characters long")
        return value

    return check


def _vmid(value: str, modern: bool) -> str:
    if not VMID_RE.match(value):
        raise ValueError("invalid format - value does not look like a valid VM ID")
    return value


def _dns_name(value: str, modern: bool) -> str:
    if not DNS_RE.match(value):
        raise ValueError("invalid format - value does not look like a valid DNS name")
    return value


def split_list(value: str) -> list[str]:
    """PVE::Tools::split_list: separators are `,`, `;`, whitespace and NUL."""
    return [item for item in re.split(r"[\0\s,;]+", value) if item]


def _tags(value: str, modern: bool) -> str:
    for tag in split_list(value):
        if not TAG_RE.match(tag):
            raise ValueError("invalid format - invalid characters in tag")
    return value


def _memory(value: str, modern: bool) -> str:
    if not modern:
        return _int(16)(value, modern)
    data = split_propstr(value, "current")
    extra = {
        k: "property is not defined in schema and the schema does not allow additional properties"
        for k in data
        if k != "current"
    }
    if extra:
        raise PropError({"": "format error", **extra})
    current = data.get("current", "512")
    try:
        return _int(16)(current, modern)
    except ValueError as exc:
        raise PropError({"": "format error", "current": str(exc)}) from None


def _drive(value: str, modern: bool) -> str:
    parse_drive(value)
    return value


def _net(value: str, modern: bool) -> str:
    parse_net(value, modern)
    return value


def _agent(value: str, modern: bool) -> str:
    data = split_propstr(value, "enabled")
    allowed = {"enabled", "fstrim_cloned_disks", "freeze-fs-on-backup", "type"}
    bad = {
        k: "property is not defined in schema and the schema does not allow additional properties"
        for k in data
        if k not in allowed
    }
    for key in ("enabled", "fstrim_cloned_disks", "freeze-fs-on-backup"):
        if key in data and normalize_bool(data[key]) is None:
            bad[key] = f"type check ('boolean') failed - got '{data[key]}'"
    if bad:
        raise PropError({"": "format error", **bad})
    return value


def _serial(value: str, modern: bool) -> str:
    if value != "socket" and not re.fullmatch(r"/dev/.+", value):
        raise ValueError("value does not match the regex pattern")
    return value


def _boot(value: str, modern: bool) -> str:
    data = split_propstr(value, "legacy")
    if "legacy" in data and not re.fullmatch(r"[acdn]{1,4}", data["legacy"]):
        raise PropError({"": "format error", "legacy": "value does not match the regex pattern"})
    return value


def _ipconfig(value: str, modern: bool) -> str:
    data = split_propstr(value, None)
    allowed = {"ip", "gw", "ip6", "gw6"}
    bad = {
        k: "property is not defined in schema and the schema does not allow additional properties"
        for k in data
        if k not in allowed
    }
    ip = data.get("ip")
    if ip is not None and ip != "dhcp" and not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", ip):
        bad["ip"] = "invalid format - invalid CIDR notation"
    gw = data.get("gw")
    if gw is not None and not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", gw):
        bad["gw"] = "invalid format - value does not look like a valid IPv4 address"
    if bad:
        raise PropError({"": "format error", **bad})
    return value


VM_OPTIONS: dict[str, Validator] = {
    "acpi": _bool,
    "affinity": _str(),
    "agent": _agent,
    "args": _str(),
    "autostart": _bool,
    "balloon": _int(0),
    "bios": _enum("seabios", "ovmf"),
    "boot": _boot,
    "bootdisk": _str(),
    "cicustom": _str(),
    "cipassword": _str(),
    "citype": _enum("configdrive2", "nocloud", "opennebula"),
    "ciupgrade": _bool,
    "ciuser": _str(),
    "cores": _int(1, 16384),
    "cpu": _str(),
    "cpulimit": _number(0, 128),
    "cpuunits": _int(1, 262144),
    "description": _str(8192),
    "freeze": _bool,
    "hookscript": _str(),
    "hotplug": _str(),
    "hugepages": _enum("any", "2", "1024"),
    "keephugepages": _bool,
    "keyboard": _str(),
    "kvm": _bool,
    "localtime": _bool,
    "machine": _str(),
    "memory": _memory,
    "migrate_downtime": _number(0),
    "migrate_speed": _int(0),
    "name": _dns_name,
    "nameserver": _str(),
    "numa": _bool,
    "onboot": _bool,
    "ostype": _enum(*OSTYPES),
    "protection": _bool,
    "reboot": _bool,
    "scsihw": _enum(*SCSIHW),
    "searchdomain": _str(),
    "shares": _int(0, 50000),
    "smbios1": _str(),
    "sockets": _int(1, 4),
    "sshkeys": _str(),
    "startdate": _str(),
    "startup": _str(),
    "tablet": _bool,
    "tags": _tags,
    "template": _bool,
    "vcpus": _int(1),
    "vga": _str(),
    "vmgenid": _str(),
    "vmstatestorage": _str(),
    "watchdog": _str(),
}
_FAMILIES: tuple[tuple[re.Pattern[str], Validator], ...] = (
    (re.compile(r"^net([0-9]|[12][0-9]|3[01])$"), _net),
    (re.compile(r"^ipconfig([0-9]|[12][0-9]|3[01])$"), _ipconfig),
    (re.compile(r"^serial[0-3]$"), _serial),
    (re.compile(r"^unused([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$"), _str()),
)

CREATE_OPTIONS: dict[str, Validator] = {
    "pool": _str(),
    "start": _bool,
    "storage": _str(),
    "unique": _bool,
    "force": _bool,
}
SET_OPTIONS: dict[str, Validator] = {
    "delete": _str(),
    "revert": _str(),
    "digest": _str(),
    "force": _bool,
    "skiplock": _bool,
}


def vm_validator(name: str) -> Validator | None:
    if name in VM_OPTIONS:
        return VM_OPTIONS[name]
    if is_drive_name(name):
        return _drive
    for pattern, validator in _FAMILIES:
        if pattern.match(name):
            return validator
    return None


def is_vm_option(name: str) -> bool:
    return vm_validator(name) is not None


def kind_of(validator: Validator | None) -> str | None:
    if validator is None:
        return None
    return "bool" if validator is _bool else "value"


def validate(
    values: dict[str, str], lookup: Callable[[str], Validator | None], modern: bool, usage: str
) -> dict[str, str]:
    """Verify every value; raise one ParamError listing all failures; return the normalised values."""
    errors: dict[str, str] = {}
    result: dict[str, str] = {}
    for name, value in values.items():
        validator = lookup(name)
        if validator is None:
            errors[name] = (
                "property is not defined in schema and the schema does not allow additional properties"
            )
            continue
        try:
            result[name] = validator(value, modern)
        except PropError as exc:
            for key, msg in exc.for_param(name).items():
                errors[key] = f"invalid format - {msg}" if key == name else msg
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ParamError(errors, usage)
    return result


BOOL = _bool
VMID = _vmid
INT = _int
ENUM = _enum
STR = _str
NUMBER = _number
NET_MODEL_NAMES = NET_MODELS
