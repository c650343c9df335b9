"""Parsers of nix's outputs, from the captured real outputs of the test flakes."""

from __future__ import annotations

import json

import pytest

from proxnix.sources.flake.nix_commands import ImageAttr
from proxnix.sources.flake.nix_outputs import (
    NixOutputError,
    check_built,
    last_lines,
    parse_build,
    parse_probe,
    qcow2_in_listing,
)
from tests.flake.conftest import nix_fixture


def test_the_probe_finds_both_image_attributes_and_leaves_out_a_missing_one() -> None:
    probes = parse_probe(nix_fixture("probe-fleet.json"), ["db", "mail", "web"])
    assert sorted(probes) == ["db", "web"]
    web, db = probes["web"], probes["db"]
    assert web.attr is ImageAttr.QCOW2
    assert web.image_file == f"{web.out_path}/nixos.qcow2"
    assert db.attr is ImageAttr.IMAGES_QEMU
    assert db.image_file == f"{db.out_path}/nixos-image-db-25.05-x86_64-linux.qcow2"


def test_build_json_is_matched_to_the_probe_by_output_path() -> None:
    probes = parse_probe(nix_fixture("probe-fleet.json"), ["db", "web"])
    built = parse_build(nix_fixture("build-fleet.json"))
    assert built == {p.out_path for p in probes.values()}
    check_built(probes.values(), built)


def test_an_output_nix_did_not_report_is_an_error() -> None:
    probes = parse_probe(nix_fixture("probe-fleet.json"), ["db", "web"])
    built = parse_build(nix_fixture("build-fleet.json"))
    with pytest.raises(NixOutputError, match="did not report the outputs of web"):
        check_built(probes.values(), built - {probes["web"].out_path})


def test_newer_nix_build_json_with_extra_keys_parses() -> None:
    entries = json.loads(nix_fixture("build-fleet.json"))
    for entry in entries:
        entry["startTime"], entry["stopTime"] = 1700000000, 1700000003
    assert parse_build(json.dumps(entries)) == parse_build(nix_fixture("build-fleet.json"))


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        ({"db": {"attr": "images.proxmox", "out": "/nix/store/x"}}, "unknown attribute 'images.proxmox'"),
        ({"db": {"attr": "qcow2", "out": "/tmp/evil"}}, "is not a nix store path"),
        (
            {"db": {"attr": "images.qemu", "out": "/nix/store/" + "a" * 32 + "-db"}},
            "no usable passthru.filePath",
        ),
        (
            {
                "db": {
                    "attr": "images.qemu",
                    "out": "/nix/store/" + "a" * 32 + "-db",
                    "filePath": "../etc/passwd",
                }
            },
            "no usable passthru.filePath",
        ),
        ({"db": "x"}, "not an attribute set"),
        ([], "did not print an attribute set"),
    ],
)
def test_a_bad_probe_is_an_error(probe: object, message: str) -> None:
    with pytest.raises(NixOutputError, match=message):
        parse_probe(json.dumps(probe), ["db"])


@pytest.mark.parametrize(
    ("printed", "message"),
    [("", "no valid JSON"), ("{}", "did not print a list"), ('[{"drvPath": "x"}]', "without outputs.out")],
)
def test_bad_build_output_is_an_error(printed: str, message: str) -> None:
    with pytest.raises(NixOutputError, match=message):
        parse_build(printed)


def test_the_single_qcow2_in_a_listing() -> None:
    assert qcow2_in_listing("/nix/store/x", ["nix-support", "disk.qcow2"]) == "/nix/store/x/disk.qcow2"
    with pytest.raises(NixOutputError, match=r"holds 2 \.qcow2 files"):
        qcow2_in_listing("/nix/store/x", ["a.qcow2", "b.qcow2"])
    with pytest.raises(NixOutputError, match=r"holds 0 \.qcow2 files"):
        qcow2_in_listing("/nix/store/x", ["image.vma.zst"])


def test_last_lines_of_the_failed_build_log() -> None:
    log = nix_fixture("build-fail.stderr")
    tail = last_lines(log, count=2)
    assert tail.splitlines() == [
        "web-qcow2> making the image failed on purpose",
        log.strip().splitlines()[-1],
    ]
    assert tail.endswith("failed with exit code 3")
    assert len(last_lines("x" * 5000, max_chars=100)) == 100
