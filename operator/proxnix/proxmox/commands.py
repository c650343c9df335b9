"""Command builders: every `qm` / `pvesh` invocation the driver makes, as an argv list.

Values are re-checked here (VMIDs, slots, storages, sizes, paths) even though the API models validated them, and the
adapters send argv lists only through `shell.shell_join`, which quotes every element for the remote shell.
Boolean options are passed with an explicit value (`--purge 1`), which every qm version accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from proxnix.proxmox.definition import VmDefinition
from proxnix.proxmox.ownership import Owner, marker_description, ownership_tags
from proxnix.proxmox.shell import (
    check_config_key,
    check_dns_name,
    check_int,
    check_pattern,
    check_remote_path,
    check_slot,
    check_storage,
    check_tag,
    check_text,
    check_vmid,
)

ConfigValue = str | int | bool
QM = "qm"
PVESH = "pvesh"
IMAGE_FORMATS = ("raw", "qcow2", "vmdk")
# Option values that could be mistaken for options or carry line breaks are refused (description excepted).
_VALUE_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def _flag(value: bool) -> str:
    return "1" if value else "0"


def render_value(key: str, value: ConfigValue) -> str:
    """A config value as a qm argument: bools as 1/0, ints as decimals, text checked (no control characters)."""
    if isinstance(value, bool):
        return _flag(value)
    if isinstance(value, int):
        return str(check_int(value, key, minimum=0, maximum=2**63 - 1))
    if key == "description":
        return check_text(value, "description")
    return check_pattern(value, _VALUE_PATTERN, f"value of {key}", max_length=4096)


# --- reads -------------------------------------------------------------------------------------------------------


def qm_list() -> list[str]:
    return [QM, "list"]


def qm_config(vmid: int, *, current: bool = False) -> list[str]:
    argv = [QM, "config", str(check_vmid(vmid))]
    return [*argv, "--current", "1"] if current else argv


def qm_status(vmid: int, *, verbose: bool = True) -> list[str]:
    argv = [QM, "status", str(check_vmid(vmid))]
    return [*argv, "--verbose", "1"] if verbose else argv


def qm_pending(vmid: int) -> list[str]:
    return [QM, "pending", str(check_vmid(vmid))]


def guest_network_interfaces(vmid: int) -> list[str]:
    return [QM, "guest", "cmd", str(check_vmid(vmid)), "network-get-interfaces"]


def pvesh_get(path: str, *params: str) -> list[str]:
    check_pattern(path, r"^/[A-Za-z0-9/_.-]*$", "API path", max_length=255)
    return [PVESH, "get", path, *params, "--output-format", "json"]


def cluster_resources() -> list[str]:
    return pvesh_get("/cluster/resources", "--type", "vm")


def cluster_nodes() -> list[str]:
    return pvesh_get("/nodes")


def next_vmid() -> list[str]:
    return pvesh_get("/cluster/nextid")


def pve_version() -> list[str]:
    return pvesh_get("/version")


def vm_config_json(node: str, vmid: int) -> list[str]:
    return pvesh_get(f"/nodes/{check_dns_name(node, 'node name')}/qemu/{check_vmid(vmid)}/config")


# --- create ------------------------------------------------------------------------------------------------------


def import_from_value(storage: str, source: str) -> str:
    """`<storage>:0,import-from=<path>` (size must be 0 with import-from, pve-cli-facts §5)."""
    return f"{check_storage(storage)}:0,import-from={check_remote_path(source)}"


def create_vm(
    definition: VmDefinition,
    owner: Owner,
    *,
    image_sha256: str | None = None,
    import_from: str | None = None,
    sshkeys_path: str | None = None,
    description_keep: str = "",
) -> list[str]:
    """`qm create` with the ownership marker (tags + description), agent, serial console and the shape.

    With `import_from` (a file on the node) the boot disk is imported in the same call and made the boot device.
    With cloud-init a drive is added on ide2; `sshkeys_path` names a file on the node (qm reads the keys from it).
    """
    d = definition
    argv = [
        QM,
        "create",
        str(check_vmid(d.vmid)),
        "--name",
        d.name,
        "--memory",
        str(d.memory_mib),
        "--cores",
        str(d.cores),
        "--sockets",
        str(d.sockets),
        "--scsihw",
        d.scsihw,
        "--net0",
        d.net0,
        "--onboot",
        _flag(d.onboot),
        "--protection",
        _flag(d.protection),
        "--agent",
        "1",
        "--serial0",
        "socket",
        "--tags",
        ";".join(ownership_tags(image_sha256, d.tags)),
        "--description",
        check_text(marker_description(owner, image_sha256, keep=description_keep), "description"),
    ]
    if import_from is not None:
        argv += [
            f"--{d.disk_slot}",
            import_from_value(d.disk_storage, import_from),
            "--boot",
            f"order={d.disk_slot}",
        ]
    if d.cloud_init is not None:
        ci = d.cloud_init
        argv += ["--ide2", f"{check_storage(ci.storage)}:cloudinit", "--ipconfig0", ci.ipconfig0]
        if ci.user:
            argv += ["--ciuser", ci.user]
        if ci.ssh_authorized_keys and sshkeys_path is not None:
            argv += [
                "--sshkeys",
                sshkeys_path if sshkeys_path == "/dev/stdin" else check_remote_path(sshkeys_path),
            ]
    return argv


# --- update ------------------------------------------------------------------------------------------------------


def set_options(
    vmid: int,
    options: Mapping[str, ConfigValue],
    *,
    delete: Sequence[str] = (),
    digest: str | None = None,
) -> list[str]:
    """`qm set <vmid> --k v ... [--delete a,b] [--digest d]`; keys sorted so the command is deterministic."""
    if not options and not delete:
        raise ValueError("qm set needs at least one option or deletion")
    argv = [QM, "set", str(check_vmid(vmid))]
    for key in sorted(options):
        argv += [f"--{check_config_key(key)}", render_value(key, options[key])]
    if delete:
        argv += ["--delete", ",".join(check_config_key(k) for k in delete)]
    if digest is not None:
        argv += ["--digest", check_pattern(digest, r"^[0-9a-f]{40}$", "config digest", max_length=40)]
    return argv


def set_tags(vmid: int, tags: Sequence[str]) -> list[str]:
    return set_options(vmid, {"tags": ";".join(sorted({check_tag(t.lower()) for t in tags}))})


def set_protection(vmid: int, protected: bool) -> list[str]:
    return set_options(vmid, {"protection": protected})


def set_description(vmid: int, description: str) -> list[str]:
    return set_options(vmid, {"description": description})


# --- disks -------------------------------------------------------------------------------------------------------


def import_disk(
    vmid: int,
    source: str,
    storage: str,
    *,
    image_format: str | None = None,
    legacy: bool = False,
) -> list[str]:
    """`qm disk import <vmid> <source> <storage> [--format f]` (`qm importdisk` with `legacy`, for PVE < 7.3)."""
    verb = ["importdisk"] if legacy else ["disk", "import"]
    argv = [QM, *verb, str(check_vmid(vmid)), check_remote_path(source), check_storage(storage)]
    if image_format is not None:
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"invalid image format {image_format!r}")
        argv += ["--format", image_format]
    return argv


def import_from(
    vmid: int, slot: str, storage: str, source: str, *, boot: bool = True, digest: str | None = None
) -> list[str]:
    """`qm set <vmid> --<slot> <storage>:0,import-from=<source> [--boot order=<slot>]` (PVE 7.2+)."""
    options: dict[str, ConfigValue] = {check_slot(slot): import_from_value(storage, source)}
    if boot:
        options["boot"] = f"order={slot}"
    return set_options(vmid, options, digest=digest)


def attach_disk(vmid: int, slot: str, volume: str, *, boot: bool = True) -> list[str]:
    """Attach an imported (unused) volume to `slot` and boot from it."""
    check_pattern(volume, r"^[a-zA-Z][a-zA-Z0-9_.-]*:[A-Za-z0-9_./+=-]+$", "volume ID", max_length=255)
    options: dict[str, ConfigValue] = {check_slot(slot): volume}
    if boot:
        options["boot"] = f"order={slot}"
    return set_options(vmid, options)


def resize_disk(vmid: int, slot: str, size_gib: int, *, legacy: bool = False) -> list[str]:
    """`qm disk resize <vmid> <slot> <N>G` to an absolute size (idempotent: same size is a no-op)."""
    verb = ["resize"] if legacy else ["disk", "resize"]
    size = check_int(size_gib, "disk size (GiB)", minimum=1, maximum=65536)
    return [QM, *verb, str(check_vmid(vmid)), check_slot(slot), f"{size}G"]


# --- power and lifecycle -----------------------------------------------------------------------------------------


def start_vm(vmid: int) -> list[str]:
    return [QM, "start", str(check_vmid(vmid))]


def stop_vm(vmid: int) -> list[str]:
    return [QM, "stop", str(check_vmid(vmid))]


def shutdown_vm(vmid: int, *, timeout_s: int = 60, force_stop: bool = False) -> list[str]:
    argv = [
        QM,
        "shutdown",
        str(check_vmid(vmid)),
        "--timeout",
        str(check_int(timeout_s, "timeout", minimum=1, maximum=86400)),
    ]
    return [*argv, "--forceStop", "1"] if force_stop else argv


def reboot_vm(vmid: int, *, timeout_s: int | None = None) -> list[str]:
    argv = [QM, "reboot", str(check_vmid(vmid))]
    if timeout_s is not None:
        argv += ["--timeout", str(check_int(timeout_s, "timeout", minimum=1, maximum=86400))]
    return argv


def destroy_vm(vmid: int, *, purge: bool = True, destroy_unreferenced_disks: bool = True) -> list[str]:
    """`qm destroy <vmid> --purge 1 --destroy-unreferenced-disks 1` (removes it from HA/backup jobs, frees all disks)."""
    argv = [QM, "destroy", str(check_vmid(vmid))]
    if purge:
        argv += ["--purge", "1"]
    if destroy_unreferenced_disks:
        argv += ["--destroy-unreferenced-disks", "1"]
    return argv
