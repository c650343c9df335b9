"""The `<vmid>.conf` file format of qemu-server: parsing, writing, digest, description encoding.

Layout written (as `PVE::QemuServer::write_vm_config`): the description as `#` lines (percent-encoded with
`encode_text`) first, then `key: value` lines in plain ASCII sort order; then `[PENDING]` (pending values and
`delete: a,!b`), `[special:cloudinit]` and one `[snapname]` section per snapshot, each preceded by a blank line.
On reading, trailing whitespace of a description is stripped.
"""

from __future__ import annotations

import re

_SECTION_RE = re.compile(r"^\[([a-z][a-z0-9_\-]+)\]\s*$", re.IGNORECASE)
_KV_RE = re.compile(r"^([a-z][a-z_\-]*\d*):\s*(.*?)\s*$")
_ENCODE_RE = re.compile(rb"[\x00-\x1f\x7f-\xff:%]")
_DECODE_RE = re.compile(rb"%([0-9a-fA-F]{2})")

PENDING = "PENDING"
CLOUDINIT = "special:cloudinit"


def encode_text(text: str) -> str:
    """PVE::Tools::encode_text: percent-encode control and non-ASCII bytes, `:` and `%`."""
    raw = text.encode("utf-8")
    return _ENCODE_RE.sub(lambda m: b"%%%02X" % m.group(0)[0], raw).decode("ascii")


def decode_text(text: str) -> str:
    raw = text.encode("utf-8")
    return _DECODE_RE.sub(lambda m: bytes([int(m.group(1), 16)]), raw).decode("utf-8", "replace")


class VmConf:
    """One VM config: main section, pending changes, cloud-init snapshot, snapshots (values as stored)."""

    def __init__(
        self,
        main: dict[str, str] | None = None,
        pending: dict[str, str] | None = None,
        cloudinit: dict[str, str] | None = None,
        snapshots: dict[str, dict[str, str]] | None = None,
        digest: str = "",
    ) -> None:
        self.main: dict[str, str] = main if main is not None else {}
        self.pending: dict[str, str] = pending if pending is not None else {}
        self.cloudinit: dict[str, str] = cloudinit if cloudinit is not None else {}
        self.snapshots: dict[str, dict[str, str]] = snapshots if snapshots is not None else {}
        self.digest = digest

    def pending_delete(self) -> dict[str, bool]:
        """Keys marked for deletion in [PENDING] (value: forced with `!`)."""
        result: dict[str, bool] = {}
        for item in re.split(r"[,;\s]+", self.pending.get("delete", "")):
            if not item:
                continue
            force = item.startswith("!")
            result[item.lstrip("!")] = force
        return result

    def set_pending_delete(self, keys: dict[str, bool]) -> None:
        if keys:
            self.pending["delete"] = ",".join(("!" if force else "") + key for key, force in keys.items())
        else:
            self.pending.pop("delete", None)

    def merged(self) -> dict[str, str]:
        """The config with pending values applied (what `qm config` shows by default)."""
        result = dict(self.main)
        for key, value in self.pending.items():
            if key != "delete":
                result[key] = value
        for key in self.pending_delete():
            result.pop(key, None)
        return result

    def lock(self) -> str | None:
        return self.main.get("lock")


def parse(text: str) -> VmConf:
    conf = VmConf(digest=digest(text))
    section = conf.main
    descr: str | None = None

    def finish() -> None:
        nonlocal descr
        if descr is not None:
            section["description"] = descr.rstrip()
        descr = None

    for line in text.splitlines():
        if not line.strip():
            continue
        match = _SECTION_RE.match(line)
        if match or line.strip() == f"[{CLOUDINIT}]":
            finish()
            name = match.group(1) if match else CLOUDINIT
            if name == PENDING:
                section = conf.pending
            elif name == CLOUDINIT:
                section = conf.cloudinit
            else:
                section = conf.snapshots.setdefault(name, {})
            continue
        if line.startswith("#"):
            descr = (descr or "") + decode_text(line[1:]) + "\n"
            continue
        match = _KV_RE.match(line)
        if match:
            section[match.group(1)] = match.group(2)
    finish()
    return conf


def _section_text(values: dict[str, str]) -> str:
    out = []
    descr = values.get("description")
    if descr is not None:
        if descr:
            lines = descr.split("\n")
            while lines and not lines[-1]:  # Perl's split drops trailing empty fields
                lines.pop()
            out += ["#" + encode_text(line) + "\n" for line in lines]
        else:
            out.append("#\n")
    for key in sorted(values):
        if key in ("digest", "description"):
            continue
        out.append(f"{key}: {values[key]}\n")
    return "".join(out)


def format_conf(conf: VmConf) -> str:
    text = _section_text(conf.main)
    if conf.pending:
        text += f"\n[{PENDING}]\n" + _section_text(conf.pending)
    if conf.cloudinit:
        text += f"\n[{CLOUDINIT}]\n" + _section_text(conf.cloudinit)
    for name in sorted(conf.snapshots):
        text += f"\n[{name}]\n" + _section_text(conf.snapshots[name])
    return text


def digest(text: str) -> str:
    import hashlib  # lazily: OpenSSL start-up costs a few ms per qm call

    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
