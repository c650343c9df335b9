from __future__ import annotations

import pytest

from proxnix.proxmox.errors import NotOwned
from proxnix.proxmox.ownership import (
    Owner,
    config_ownership,
    marker_description,
    ownership_tags,
    read_ownership,
    require_owned,
)
from proxnix.proxmox.vm_config import parse_vm_config, parse_vm_config_file
from tests.proxmox.conftest import fixture_text

SHA = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
OWNER = Owner(namespace="prod", name="db-primary", uid="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")


def test_marker_format() -> None:
    assert marker_description(OWNER, SHA).split("\n") == [
        "Managed by proxnix. Do not edit the proxnix.io lines.",
        "proxnix.io/owner: prod/db-primary",
        "proxnix.io/uid: 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        f"proxnix.io/image-sha256: {SHA}",
    ]
    assert ownership_tags(SHA, ["web"]) == ["nix-fedcba987654", "proxnix", "web"]
    assert ownership_tags(None) == ["proxnix"]


def test_marker_keeps_user_notes_and_replaces_block() -> None:
    first = marker_description(OWNER, SHA, keep="my notes\nline two")
    newer = "0" * 64
    second = marker_description(OWNER, newer, keep=first)
    assert second.startswith("my notes\nline two\n\nManaged by proxnix.")
    assert second.count("proxnix.io/uid") == 1
    assert read_ownership(second, ["proxnix"]).image_sha256 == newer


def test_conf_file_marker_is_ours_for_the_right_uid_only() -> None:
    config = parse_vm_config_file(fixture_text("conf-100-full.conf"), path="100.conf")
    ownership = config_ownership(config)
    assert ownership.owner == OWNER
    assert ownership.image_sha256 == SHA
    assert ownership.owned_by(OWNER.uid)
    assert not ownership.owned_by("someone-else")
    assert require_owned(config, OWNER.uid, vmid=100) == ownership
    with pytest.raises(NotOwned) as info:
        require_owned(config, "11111111-2222-3333-4444-555555555555", vmid=100, node="pve1")
    assert info.value.found_uid == OWNER.uid
    assert "prod/db-primary" in str(info.value)


def test_legacy_tag_only_and_unmarked_are_not_owned() -> None:
    legacy = parse_vm_config_file(fixture_text("conf-102-locked-legacy.conf"), path="102.conf")
    assert config_ownership(legacy).legacy
    assert not config_ownership(legacy).managed
    with pytest.raises(NotOwned, match=r"no proxnix\.io ownership block"):
        require_owned(legacy, OWNER.uid, vmid=102)
    bare = parse_vm_config("name: x\n")
    with pytest.raises(NotOwned, match="no proxnix ownership marker"):
        require_owned(bare, OWNER.uid, vmid=103)


def test_forged_or_broken_blocks() -> None:
    assert read_ownership("proxnix.io/uid: abc", ["proxnix"]).owner is None  # no owner line
    assert (
        read_ownership("proxnix.io/owner: A B/c\nproxnix.io/uid: abc", []).owner is None
    )  # invalid namespace
    assert read_ownership(
        "proxnix.io/owner: a/b\nproxnix.io/uid: abc\nproxnix.io/uid: zzz", []
    ).owner == Owner(namespace="a", name="b", uid="abc")
    assert read_ownership("proxnix.io/owner: a/b\r\nproxnix.io/uid: abc\r\n", []).owned_by("abc")


def test_owner_validates() -> None:
    with pytest.raises(ValueError, match="invalid object uid"):
        Owner(namespace="default", name="x", uid="bad uid; rm")
