"""Storages of one node: `storage.cfg` parsing, volume allocation, sizes, import, resize and removal.

Volumes are real files on the host: a `dir` storage keeps `images/<vmid>/vm-<vmid>-disk-N.<fmt>` under its path
(`local` = /var/lib/vz, the node's `vz/` folder); an `lvmthin` storage keeps one sparse raw file per logical
volume under the node's `lvm/<vgname>/`. Allocation is serialised per storage with a flock shown as
`/var/lock/pve-manager/pve-storage-<id>`. Output lines mimic the storage tools (lvcreate, qemu-img).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import struct
from pathlib import Path
from typing import Any, Protocol, TextIO

from pvesim import locks
from pvesim.errors import PveError
from pvesim.layout import Layout, Settings
from pvesim.propstr import MIB, format_size
from pvesim.render import render_bytes

DEFAULT_STORAGE_CFG = """dir: local
\tpath /var/lib/vz
\tcontent iso,vztmpl,backup,images,import

lvmthin: local-lvm
\tthinpool data
\tvgname pve
\tcontent rootdir,images
"""

LVM_EXTENT = 4 * MIB
_DIR_VOL_RE = re.compile(r"^(\d+)/((?:vm|base)-(\d+)-[\w.-]+?)\.(raw|qcow2|vmdk)$")
_LVM_VOL_RE = re.compile(r"^((?:vm|base)-(\d+)-[\w.-]+)$")
_DISK_N_RE = re.compile(r"^(?:vm|base)-(\d+)-disk-(\d+)(?:\.\w+)?$")
VALID_FORMATS = {"dir": ("raw", "qcow2", "vmdk"), "lvmthin": ("raw",)}


class StorageDef:
    """One storage.cfg entry."""

    def __init__(self, storeid: str, type: str, options: dict[str, str] | None = None) -> None:
        self.storeid = storeid
        self.type = type
        self.options: dict[str, str] = options if options is not None else {}

    @property
    def content(self) -> set[str]:
        return {c for c in self.options.get("content", "").split(",") if c}

    @property
    def path(self) -> str:
        return self.options.get("path", "/var/lib/vz")

    @property
    def default_format(self) -> str:
        return "raw"

    def on_node(self, node: str) -> bool:
        nodes = self.options.get("nodes")
        return not nodes or node in nodes.split(",")


def parse_storage_cfg(text: str) -> dict[str, StorageDef]:
    result: dict[str, StorageDef] = {}
    current: StorageDef | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            match = re.match(r"^(\w+):\s*(\S+)\s*$", line)
            if match:
                current = StorageDef(match.group(2), match.group(1))
                result[current.storeid] = current
            continue
        if current is not None:
            key, _, value = line.strip().partition(" ")
            current.options[key] = value.strip()
    return result


def qcow2_virtual_size(path: Path) -> int | None:
    with path.open("rb") as fh:
        header = fh.read(32)
    if len(header) < 32 or header[:4] != b"QFI\xfb":
        return None
    size: int = struct.unpack(">Q", header[24:32])[0]
    return size


def qemu_img_info(path: str) -> dict[str, Any]:
    import json
    import subprocess

    proc = subprocess.run(
        ["qemu-img", "info", "--output=json", path], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise PveError(f"qemu-img info failed for '{path}' - {proc.stderr.strip()}")
    info: dict[str, Any] = json.loads(proc.stdout)
    return info


class Streams(Protocol):
    """Where output goes: `out` for storage tool output (stdout), `log` for lock messages and warnings
    (stderr, or stdout inside a task)."""

    out: TextIO
    log: TextIO


class NodeStorage:
    """The storages of `node` as one `qm` invocation sees them."""

    def __init__(self, layout: Layout, node: str, settings: Settings, io: Streams) -> None:
        self.layout = layout
        self.node = node
        self.settings = settings
        self.io = io
        cfg = layout.pve_dir / "storage.cfg"
        self.defs = parse_storage_cfg(cfg.read_text() if cfg.exists() else DEFAULT_STORAGE_CFG)

    # --- lookup ---------------------------------------------------------------------------------------

    def get(self, storeid: str) -> StorageDef:
        sdef = self.defs.get(storeid)
        if sdef is None:
            raise PveError(f"storage '{storeid}' does not exist")
        if not sdef.on_node(self.node):
            raise PveError(f"storage '{storeid}' is not available on node '{self.node}'")
        return sdef

    def check_images(self, storeid: str) -> StorageDef:
        sdef = self.get(storeid)
        if "images" not in sdef.content:
            raise PveError(f"storage {storeid} does not support vm images")
        return sdef

    def dir_root(self, sdef: StorageDef) -> Path:
        path = sdef.path
        if path == "/var/lib/vz" or path.startswith("/var/lib/vz/"):
            return self.layout.physical_path(self.node, path)
        return self.layout.node_dir(self.node) / "fs" / path.lstrip("/")

    def lvm_root(self, sdef: StorageDef) -> Path:
        return self.layout.lvm_dir(self.node) / sdef.options.get("vgname", "pve")

    def volume_path(self, volid: str) -> tuple[StorageDef, Path, str]:
        """(storage, host path, format) of a volume id; raises when the id is malformed."""
        storeid, sep, volname = volid.partition(":")
        if not sep:
            raise PveError(f"unable to parse volume ID '{volid}'")
        sdef = self.get(storeid)
        if sdef.type == "lvmthin":
            if not _LVM_VOL_RE.match(volname):
                raise PveError(f"unable to parse lvm volume name '{volname}'")
            return sdef, self.lvm_root(sdef) / volname, "raw"
        root = self.dir_root(sdef)
        match = _DIR_VOL_RE.match(volname)
        if match:
            return sdef, root / "images" / volname, match.group(4)
        for prefix, sub in (
            ("iso/", "template/iso/"),
            ("import/", "import/"),
            ("vztmpl/", "template/cache/"),
        ):
            if volname.startswith(prefix) and "/" not in volname[len(prefix) :]:
                ext = volname.rsplit(".", 1)[-1]
                return sdef, root / sub / volname[len(prefix) :], ext if ext in ("qcow2", "vmdk") else "raw"
        raise PveError(f"unable to parse directory volume name '{volname}'")

    def display_path(self, sdef: StorageDef, host_path: Path) -> str:
        if sdef.type == "lvmthin":
            return f"/dev/{sdef.options.get('vgname', 'pve')}/{host_path.name}"
        return sdef.path.rstrip("/") + "/" + str(host_path.relative_to(self.dir_root(sdef)))

    def exists(self, volid: str) -> bool:
        try:
            return self.volume_path(volid)[1].is_file()
        except PveError:
            return False

    def size(self, volid: str) -> int | None:
        _, path, fmt = self.volume_path(volid)
        if not path.is_file():
            return None
        if fmt == "qcow2":
            return qcow2_virtual_size(path)
        if fmt == "vmdk":
            info = qemu_img_info(str(path))
            return int(info["virtual-size"])
        return path.stat().st_size

    def volumes(self, storeid: str) -> list[str]:
        sdef = self.get(storeid)
        if sdef.type == "lvmthin":
            root = self.lvm_root(sdef)
            return (
                sorted(f"{storeid}:{p.name}" for p in root.glob("*-*") if p.is_file())
                if root.is_dir()
                else []
            )
        images = self.dir_root(sdef) / "images"
        if not images.is_dir():
            return []
        return sorted(f"{storeid}:{p.parent.name}/{p.name}" for p in images.glob("*/*") if p.is_file())

    def owned_volumes(self, vmid: int) -> list[str]:
        result = []
        for storeid, sdef in sorted(self.defs.items()):
            if not sdef.on_node(self.node) or "images" not in sdef.content:
                continue
            for volid in self.volumes(storeid):
                volname = volid.split(":", 1)[1].split("/")[-1]
                if re.match(rf"^(vm|base)-{vmid}-", volname):
                    result.append(volid)
        return result

    # --- allocation -----------------------------------------------------------------------------------

    def storage_lock(self, storeid: str) -> Any:
        path = self.layout.lock_dir(self.node) / f"pve-storage-{storeid}"
        return locks.flock(
            path, f"/var/lock/pve-manager/pve-storage-{storeid}", self.settings.lock_timeout, self.io.log
        )

    def resolve_format(self, sdef: StorageDef, wanted: str | None) -> str:
        valid = VALID_FORMATS.get(sdef.type, ("raw",))
        fmt = wanted or sdef.default_format
        if fmt not in valid:
            self.io.log.write(
                f"format '{fmt}' is not supported by the target storage - using '{sdef.default_format}' instead\n"
            )
            fmt = sdef.default_format
        return fmt

    def _free_name(self, sdef: StorageDef, vmid: int) -> str:
        """The first free `vm-<vmid>-disk-N` of this storage (numbers count per VMID and storage)."""
        used = set()
        for volid in self.volumes(sdef.storeid):
            match = _DISK_N_RE.match(volid.split(":", 1)[1].split("/")[-1])
            if match and match.group(1) == str(vmid):
                used.add(int(match.group(2)))
        n = 0
        while n in used:
            n += 1
        return f"vm-{vmid}-disk-{n}"

    def alloc(self, storeid: str, vmid: int, fmt: str, size: int, name: str | None = None) -> str:
        """Allocate a volume of `size` bytes; print what the storage tool prints; return the volume id."""
        sdef = self.check_images(storeid)
        with self.storage_lock(storeid):
            base = name or self._free_name(sdef, vmid)
            if sdef.type == "lvmthin":
                size = math.ceil(size / LVM_EXTENT) * LVM_EXTENT
                root = self.lvm_root(sdef)
                root.mkdir(parents=True, exist_ok=True)
                path = root / base
                if path.exists():
                    raise PveError(
                        f"lvcreate '{sdef.options.get('vgname', 'pve')}/{base}' error:   Logical Volume \"{base}\" already exists in volume group"
                    )
                with path.open("wb") as fh:
                    fh.truncate(size)
                self.io.out.write(f'  Logical volume "{base}" created.\n')
                return f"{storeid}:{base}"
            images = self.dir_root(sdef) / "images" / str(vmid)
            images.mkdir(parents=True, exist_ok=True)
            path = images / f"{base}.{fmt}"
            if path.exists():
                raise PveError(f"disk image '{path}' already exists")
            display = self.display_path(sdef, path)
            if fmt == "qcow2":
                self._qemu_img_create(path, size)
                self.io.out.write(
                    f"Formatting '{display}', fmt=qcow2 cluster_size=65536 extended_l2=off "
                    f"preallocation=metadata compression_type=zlib size={size} lazy_refcounts=off refcount_bits=16\n"
                )
            else:
                with path.open("wb") as fh:
                    fh.truncate(size)
                self.io.out.write(f"Formatting '{display}', fmt={fmt} size={size} preallocation=off\n")
            return f"{storeid}:{vmid}/{base}.{fmt}"

    @staticmethod
    def _qemu_img_create(path: Path, size: int) -> None:
        import subprocess

        proc = subprocess.run(
            ["qemu-img", "create", "-f", "qcow2", str(path), str(size)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise PveError(f"unable to create image: {proc.stderr.strip()}")

    def free(self, volid: str) -> None:
        sdef, path, _ = self.volume_path(volid)
        if not path.exists():
            raise PveError(f"volume '{volid}' does not exist")
        with self.storage_lock(sdef.storeid):
            path.unlink()
        if sdef.type == "lvmthin":
            self.io.out.write(f'  Logical volume "{path.name}" successfully removed.\n')
        else:
            with contextlib.suppress(OSError):
                path.parent.rmdir()

    def resize(self, volid: str, new_size: int) -> None:
        sdef, path, fmt = self.volume_path(volid)
        old = self.size(volid) or 0
        if sdef.type == "lvmthin":
            new_size = math.ceil(new_size / LVM_EXTENT) * LVM_EXTENT
            with path.open("r+b") as fh:
                fh.truncate(new_size)
            vg = sdef.options.get("vgname", "pve")
            self.io.out.write(
                f"  Size of logical volume {vg}/{path.name} changed from {render_bytes(old, 2)} "
                f"({old // LVM_EXTENT} extents) to {render_bytes(new_size, 2)} ({new_size // LVM_EXTENT} extents).\n"
                f"  Logical volume {vg}/{path.name} successfully resized.\n"
            )
            return
        if fmt == "qcow2":
            import subprocess

            subprocess.run(
                ["qemu-img", "resize", "-f", "qcow2", str(path), str(new_size)],
                capture_output=True,
                check=True,
            )
        else:
            with path.open("r+b") as fh:
                fh.truncate(new_size)
        self.io.out.write("Image resized.\n")

    def move_to(self, volid: str, target_node: str) -> None:
        """Move a volume file to the same storage on another node (migration of local disks)."""
        _, path, _ = self.volume_path(volid)
        other = NodeStorage(self.layout, target_node, self.settings, self.io)
        _, target, _ = other.volume_path(volid)
        target.parent.mkdir(parents=True, exist_ok=True)
        import shutil

        shutil.move(str(path), str(target))
        if path.parent.name.isdigit():
            with contextlib.suppress(OSError):
                path.parent.rmdir()

    # --- import ---------------------------------------------------------------------------------------

    def copy_image(self, source: str, src_format: str, volid: str, size: int) -> None:
        """Convert `source` into the (already allocated) volume, printing qemu-server's progress lines."""
        import subprocess

        _, path, fmt = self.volume_path(volid)
        allocated = path.stat().st_size if fmt == "raw" else None
        total = render_bytes(size, 1)
        self.io.out.write(f"transferred {render_bytes(0, 1)} of {total} (0.00%)\n")
        proc = subprocess.run(
            ["qemu-img", "convert", "-f", src_format, "-O", fmt, source, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise PveError(f"copy failed: command 'qemu-img convert' failed: {proc.stderr.strip()}")
        if allocated is not None and path.stat().st_size < allocated:
            with path.open("r+b") as fh:
                fh.truncate(allocated)
        for percent in range(1, 101):
            done = render_bytes(int(size * percent / 100), 1)
            self.io.out.write(f"transferred {done} of {total} ({percent:.2f}%)\n")
        self.io.out.write(f"transferred {total} of {total} (100.00%)\n")


def import_size_kib(virtual_size: int) -> int:
    return math.ceil(virtual_size / 1024)


def size_label(size: int) -> str:
    return format_size(size)


def ensure_default_cfg(layout: Layout) -> None:
    cfg = layout.pve_dir / "storage.cfg"
    if not cfg.exists():
        cfg.write_text(DEFAULT_STORAGE_CFG)
    os.makedirs(layout.pve_dir, exist_ok=True)
