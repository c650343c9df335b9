"""Validation rules of the API models: what a user may write, and the clear error for what they may not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from proxnix.api import GitRepoSpec, ProxmoxNodeSpec, ProxmoxVMSpec
from proxnix.api.gitrepo import GitRef
from proxnix.api.proxmoxvm import IpConfig, ProxmoxVMStatus
from proxnix.api.scalars import parse_duration

VM: dict[str, Any] = {"node": "pve1", "vmid": 100, "image": {"source": "/nix/store/abc-image/nixos.qcow2"}}


def vm(**changes: Any) -> ProxmoxVMSpec:
    return ProxmoxVMSpec.model_validate({**VM, **changes})


def test_vm_defaults() -> None:
    spec = vm()
    assert (spec.cores, spec.sockets, spec.memory_mib) == (1, 1, 512)
    assert spec.disk.slot == "scsi0"
    assert spec.scsi_hardware == "virtio-scsi-pci"
    assert spec.run_strategy == "Always"
    assert spec.deletion_policy == "Delete"
    assert spec.on_boot is True
    assert spec.protected is False


def test_vm_wire_names_are_camel_case() -> None:
    wire = vm(memoryMiB=2048, disk={"sizeGiB": 10}).to_wire()
    assert wire["memoryMiB"] == 2048
    assert wire["disk"] == {"sizeGiB": 10, "slot": "scsi0"}
    assert "memory_mib" not in wire


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"vmid": 99}, "vmid"),
        ({"vmid": 1_000_000_000}, "vmid"),
        ({"name": "web_01"}, "name"),
        ({"name": "-web"}, "name"),
        ({"memoryMiB": 15}, "memoryMiB"),
        ({"cores": 0}, "cores"),
        ({"sockets": 0}, "sockets"),
        ({"scsiHardware": "nvme"}, "scsiHardware"),
        ({"tags": ["Prod"]}, "tags"),
        ({"tags": ["a;b"]}, "tags"),
        ({"tags": ["dup", "dup"]}, "tags"),
        ({"disk": {"storage": "local lvm"}}, "disk.storage"),
        ({"disk": {"slot": "nvme0"}}, "disk.slot"),
        ({"network": {"bridge": "vmbr0;reboot"}}, "network.bridge"),
        ({"image": {"source": "relative/path.qcow2"}}, "image.source"),
        ({"image": {"source": "/tmp/a b.qcow2"}}, "image.source"),
        ({"image": {"source": "/x.qcow2", "sha256": "ABC"}}, "image.sha256"),
        ({"runStrategy": "Sometimes"}, "runStrategy"),
        ({"node": "PVE1"}, "node"),
        ({"unknownField": 1}, "unknownField"),
        ({"cloudInit": {"sshAuthorizedKeys": ["not a key"]}}, "cloudInit.sshAuthorizedKeys.0"),
    ],
)
def test_vm_rejects(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        vm(**changes)
    locations = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert any(loc == field or loc.startswith(field + ".") for loc in locations), locations


def test_ip_config() -> None:
    assert IpConfig.model_validate({}).address == "dhcp"
    assert IpConfig.model_validate({"address": "192.0.2.5/24", "gateway": "192.0.2.1"}).gateway == "192.0.2.1"
    with pytest.raises(ValidationError, match="only allowed with a static address"):
        IpConfig.model_validate({"gateway": "192.0.2.1"})
    with pytest.raises(ValidationError):
        IpConfig.model_validate({"address": "999.0.2.5/24"})


def test_node_defaults_and_rules() -> None:
    spec = ProxmoxNodeSpec.model_validate({"host": "10.0.0.2", "credentialsSecretRef": {"name": "pve1-ssh"}})
    assert (spec.port, spec.user, spec.max_sessions) == (22, "root", 4)
    assert (spec.default_storage, spec.default_bridge) == ("local-lvm", "vmbr0")
    assert spec.host_key_policy == "Verify"
    for bad in ({"port": 0}, {"maxSessions": 0}, {"user": "Root"}, {"host": "a b"}, {"imageCacheDir": "rel"}):
        with pytest.raises(ValidationError):
            ProxmoxNodeSpec.model_validate({"host": "h", "credentialsSecretRef": {"name": "s"}, **bad})


@pytest.mark.parametrize(
    "url",
    [
        "ssh://git@git.example.net/ops/homelab.git",
        "ssh://git@git.example.net:2222/ops/homelab.git",
        "git@github.com:owner/repo.git",
        "https://github.com/owner/repo",
        "file:///srv/git/homelab.git",
    ],
)
def test_gitrepo_accepts_url_forms(url: str) -> None:
    assert GitRepoSpec.model_validate({"url": url}).url == url


@pytest.mark.parametrize(
    "url", ["ftp://x/y", "/srv/git/repo", "git@host:", "https://host/a b", "ssh://host/x;ls"]
)
def test_gitrepo_rejects_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        GitRepoSpec.model_validate({"url": url})


def test_gitrepo_ref_exactly_one() -> None:
    assert GitRepoSpec.model_validate({"url": "git@h:o/r.git"}).ref.branch == "main"
    assert GitRef(tag="v1").tag == "v1"
    with pytest.raises(ValidationError, match="exactly one"):
        GitRef(branch="main", tag="v1")
    with pytest.raises(ValidationError, match="exactly one"):
        GitRef()
    with pytest.raises(ValidationError):
        GitRef(commit="abc")
    assert GitRef(commit="a" * 40).commit == "a" * 40


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("1h30m", 5400), ("45s", 45), ("500ms", 0.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert GitRepoSpec.model_validate({"url": "git@h:o/r.git", "interval": text}).interval == text


@pytest.mark.parametrize("text", ["5", "5 minutes", "m", "-5m", "5d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
    with pytest.raises(ValidationError):
        GitRepoSpec.model_validate({"url": "git@h:o/r.git", "interval": text})


def test_flake_path_stays_inside() -> None:
    assert (
        GitRepoSpec.model_validate({"url": "git@h:o/r.git", "flakePath": "deploy/vms"}).flake_path
        == "deploy/vms"
    )
    for bad in ("../x", "/abs", "a/../../b", "a//b"):
        with pytest.raises(ValidationError):
            GitRepoSpec.model_validate({"url": "git@h:o/r.git", "flakePath": bad})


def test_status_tolerates_unknown_fields() -> None:
    status = ProxmoxVMStatus.model_validate({"phase": "Running", "fieldFromTheFuture": 1})
    assert status.phase == "Running"


def test_gitrepo_safety_fields_default_to_keeping_vms() -> None:
    spec = GitRepoSpec.model_validate({"url": "git@h:o/r.git"})
    assert spec.deletion_policy == "Orphan"
    assert spec.prune_limit is None
    assert spec.submodules is False
    spec = GitRepoSpec.model_validate(
        {"url": "git@h:o/r.git", "deletionPolicy": "Delete", "pruneLimit": 0, "submodules": True}
    )
    assert (spec.deletion_policy, spec.prune_limit, spec.submodules) == ("Delete", 0, True)
    for bad in ({"deletionPolicy": "Retain"}, {"pruneLimit": -1}):
        with pytest.raises(ValidationError):
            GitRepoSpec.model_validate({"url": "git@h:o/r.git", **bad})
