"""The ownership marker: what proxnix writes on every VM it creates, and the test that decides whether an observed VM
is the operator's and for which ProxmoxVM object.

Written at create (and kept up to date):
- tags: `proxnix` and, as the original tool did, `nix-<first 12 hex of the image sha256>`;
- a description block (Proxmox "Notes"), one `proxnix.io/<key>: <value>` line per fact::

      Managed by proxnix. Do not edit the proxnix.io lines.
      proxnix.io/owner: <namespace>/<name>
      proxnix.io/uid: <metadata.uid>
      proxnix.io/image-sha256: <sha256>

A VM is owned by a ProxmoxVM only if the description block names that object's uid. The `proxnix` tag alone (VMs of
the original Rust tool, or a block someone deleted) is reported as `legacy`, never as owned: the driver refuses to
change or destroy such a VM.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from proxnix.api.meta import K8S_NAME_PATTERN
from proxnix.proxmox.errors import NotOwned
from proxnix.proxmox.shell import check_pattern, check_sha256, check_tag
from proxnix.proxmox.vm_config import VmConfig

OWNER_TAG = "proxnix"
IMAGE_TAG_PREFIX = "nix-"
MARKER_PREFIX = "proxnix.io/"
MARKER_HEADER = "Managed by proxnix. Do not edit the proxnix.io lines."
UID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
_MARKER_LINE = re.compile(r"^\s*proxnix\.io/([a-z0-9-]+):\s*(\S.*?)\s*$")


@dataclass(frozen=True)
class Owner:
    """The ProxmoxVM object a VM belongs to."""

    namespace: str
    name: str
    uid: str

    def __post_init__(self) -> None:
        check_pattern(self.namespace, K8S_NAME_PATTERN, "namespace", max_length=63)
        check_pattern(self.name, K8S_NAME_PATTERN, "object name", max_length=253)
        check_pattern(self.uid, UID_PATTERN, "object uid", max_length=64)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} (uid {self.uid})"


@dataclass(frozen=True)
class Ownership:
    """What the marker on an observed VM says.

    `owner` is set when the description block is complete; `legacy` when only the `proxnix` tag is there.
    """

    owner: Owner | None = None
    image_sha256: str = ""
    legacy: bool = False

    @property
    def managed(self) -> bool:
        return self.owner is not None

    def owned_by(self, uid: str) -> bool:
        return self.owner is not None and self.owner.uid == uid


def image_tag(image_sha256: str) -> str:
    return IMAGE_TAG_PREFIX + check_sha256(image_sha256)[:12]


def ownership_tags(image_sha256: str | None, extra: Iterable[str] = ()) -> list[str]:
    """The VM's full tag list: `proxnix`, `nix-<hash12>` and the user's tags; lowercase, unique, sorted (the form
    `qm set --tags` stores, so create and update write the same value)."""
    tags = {OWNER_TAG, *(check_tag(t.lower()) for t in extra)}
    if image_sha256:
        tags.add(image_tag(image_sha256))
    return sorted(tags)


def marker_lines(owner: Owner, image_sha256: str | None) -> list[str]:
    lines = [
        MARKER_HEADER,
        f"{MARKER_PREFIX}owner: {owner.namespace}/{owner.name}",
        f"{MARKER_PREFIX}uid: {owner.uid}",
    ]
    if image_sha256:
        lines.append(f"{MARKER_PREFIX}image-sha256: {check_sha256(image_sha256)}")
    return lines


def marker_description(owner: Owner, image_sha256: str | None, *, keep: str = "") -> str:
    """The description to write: `keep`'s own lines (a user's notes) with the marker block replaced by a fresh one."""
    others = [
        line
        for line in keep.replace("\r\n", "\n").split("\n")
        if not _MARKER_LINE.match(line) and line.strip() != MARKER_HEADER
    ]
    while others and not others[-1].strip():
        others.pop()
    block = marker_lines(owner, image_sha256)
    return "\n".join([*others, "", *block] if others else block)


def read_ownership(description: str, tags: Iterable[str]) -> Ownership:
    """Decide from a VM's description and tags whether it is ours, and whose."""
    facts: dict[str, str] = {}
    for line in description.replace("\r\n", "\n").split("\n"):
        m = _MARKER_LINE.match(line)
        if m and m.group(1) not in facts:
            facts[m.group(1)] = m.group(2)
    tagged = OWNER_TAG in {t.lower() for t in tags}
    owner: Owner | None = None
    namespace, _, name = facts.get("owner", "").partition("/")
    try:
        if facts.get("uid") and namespace and name:
            owner = Owner(namespace=namespace, name=name, uid=facts["uid"])
    except ValueError:
        owner = None
    image = facts.get("image-sha256", "")
    if not re.fullmatch(r"[0-9a-f]{64}", image):
        image = ""
    return Ownership(owner=owner, image_sha256=image, legacy=owner is None and tagged)


def config_ownership(config: VmConfig) -> Ownership:
    return read_ownership(config.description, config.tags)


def require_owned(config: VmConfig, uid: str, *, vmid: int, node: str = "") -> Ownership:
    """The ownership of `config`, or NotOwned when it does not name `uid`."""
    ownership = config_ownership(config)
    if ownership.owned_by(uid):
        return ownership
    if ownership.owner is not None:
        why = f"it belongs to {ownership.owner}"
    elif ownership.legacy:
        why = "it has the 'proxnix' tag but no proxnix.io ownership block (created by another tool?)"
    else:
        why = "it has no proxnix ownership marker"
    raise NotOwned(
        f"refusing to touch VM {vmid}: {why}, not to uid {uid}",
        vmid=vmid,
        found_uid=ownership.owner.uid if ownership.owner else "",
        node=node,
    )
