"""The flake format: the users' VMs and our extensions parse; every problem names the VM key and the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from proxnix.api.proxmoxvm import DeletionPolicy, NetworkModel, RunStrategy, ScsiHardware
from proxnix.sources.flake.vms import FlakeFormatError, parse_vms, parse_vms_json
from tests.flake.conftest import eval_output, nix_fixture


def test_the_fleet_parses_in_the_users_format_with_extensions() -> None:
    vms = parse_vms_json(nix_fixture("eval-fleet.json"))
    assert sorted(vms) == ["db01", "web01", "web02"]
    web01, web02, db01 = vms["web01"], vms["web02"], vms["db01"]
    assert (web01.vm_id, web01.image_type, web01.memory_mb, web01.cloud_init) == (100, "web", 2048, None)
    assert web02.cloud_init == "local-lvm"
    assert web02.protected
    assert web02.scsi_hw is ScsiHardware.VIRTIO_SCSI_PCI
    assert web02.disk_slot == "scsi0"
    assert db01.node == "pve2"
    assert db01.run_strategy is RunStrategy.HALTED
    assert db01.deletion_policy is DeletionPolicy.RETAIN
    assert db01.net_model is NetworkModel.E1000
    assert db01.tags == ["db", "tier-2"]
    assert db01.on_boot is False
    assert db01.ip_config is not None
    assert db01.ip_config.gateway == "192.0.2.1"
    assert db01.cloud_init_user == "ops"
    assert len(db01.ssh_authorized_keys) == 1


def test_an_empty_fleet_is_valid() -> None:
    assert parse_vms(eval_output("empty")) == {}


def test_the_invalid_vm_variant_names_each_key_and_field() -> None:
    with pytest.raises(FlakeFormatError) as caught:
        parse_vms(eval_output("invalid-vm"))
    assert caught.value.problems == [
        "vms.web02.cores: Input should be greater than or equal to 1",
        "vms.web02.storage_location: Field required",
    ]


def _fleet_with(key: str, **changes: Any) -> dict[str, Any]:
    output = copy.deepcopy(eval_output("fleet"))
    output["vms"][key].update(changes)
    return dict(output)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"cloud_init": "none"},
            'vms.web01.cloud_init: must be "None" or { StorageReference = "<storage>"; }',
        ),
        (
            {"cloud_init": {"StorageReference": "bad storage"}},
            "vms.web01.cloud_init: String should match pattern",
        ),
        ({"memroy_mb": 1}, "vms.web01.memroy_mb: Extra inputs are not permitted"),
        ({"vm_id": 99}, "vms.web01.vm_id: Input should be greater than or equal to 100"),
        ({"image_type": "web; rm -rf /"}, "vms.web01.image_type: String should match pattern"),
        ({"tags": ["Upper"]}, "vms.web01.tags.0: String should match pattern"),
        ({"tags": ["a", "a"]}, "vms.web01: tags must be unique"),
        ({"cloud_init_user": "ops"}, "vms.web01: cloud_init_user need a cloud-init drive"),
        ({"run_strategy": "Sometimes"}, "vms.web01.run_strategy: Input should be"),
        ({"node": "PVE1"}, "vms.web01.node: String should match pattern"),
    ],
)
def test_a_bad_field_is_named(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(FlakeFormatError) as caught:
        parse_vms(_fleet_with("web01", **changes))
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(expected), caught.value.problems


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([], 'the proxnix output must be an attribute set with a "vms" attribute set'),
        ({"vms": []}, 'the proxnix output must be an attribute set with a "vms" attribute set'),
        ({"vms": {"a": 1}}, "vms.a: must be an attribute set, not int"),
        ({"vms": {"-x": {}}}, "vms.-x: a VM key must match"),
        ({"vms": {}, "vm": {}}, "proxnix.vm: unknown attribute (only vms is read)"),
    ],
)
def test_a_bad_shape_is_named(output: Any, expected: str) -> None:
    with pytest.raises(FlakeFormatError) as caught:
        parse_vms(output)
    assert caught.value.problems[0].startswith(expected)


def test_invalid_json_is_a_format_error() -> None:
    with pytest.raises(FlakeFormatError, match="no valid JSON"):
        parse_vms_json("{")
