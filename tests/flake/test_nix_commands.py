"""nix argv builders: exact command lines, values validated before they reach an argv or a nix expression."""

from __future__ import annotations

import pytest

from proxnix.sources.flake.nix_commands import (
    FlakeRef,
    ImageAttr,
    NixCommandError,
    NixVersion,
    add_root_argv,
    build_argv,
    eval_argv,
    parse_version,
    probe_argv,
)
from tests.flake.conftest import NIX_FIXTURES

FLAKE = FlakeRef("/var/lib/proxnix/checkouts/ns.fleet-abc")


def test_eval_argv() -> None:
    assert eval_argv(FLAKE) == [
        "nix",
        "eval",
        "--json",
        "--no-update-lock-file",
        "path:/var/lib/proxnix/checkouts/ns.fleet-abc#proxnix",
    ]


def test_a_flake_in_a_subfolder() -> None:
    assert str(FlakeRef("/tmp/co", "deploy/prod")) == "path:/tmp/co/deploy/prod"


def test_build_argv_builds_exactly_the_given_images_in_one_invocation() -> None:
    argv = build_argv(FLAKE, [("db", ImageAttr.IMAGES_QEMU), ("web", ImageAttr.QCOW2)])
    assert argv == [
        "nix",
        "build",
        "--json",
        "--no-link",
        "-L",
        "--no-update-lock-file",
        f"{FLAKE}#nixosConfigurations.db.config.system.build.images.qemu",
        f"{FLAKE}#nixosConfigurations.web.config.system.build.qcow2",
    ]


def test_probe_argv_names_the_used_images_as_nix_strings() -> None:
    argv = probe_argv(FLAKE, ["db", "web"])
    assert argv[:5] == ["nix", "eval", "--json", "--no-update-lock-file", f"{FLAKE}#nixosConfigurations"]
    assert argv[5] == "--apply"
    assert argv[6].startswith("cs: builtins.listToAttrs")
    assert argv[6].endswith('[ "db" "web" ])')


@pytest.mark.parametrize(
    "bad",
    ["relative", "/tmp/with space", "/tmp/x?dir=..", "/tmp/x#attr", "/tmp/$(reboot)", "/tmp/x;y", ""],
)
def test_a_checkout_folder_that_is_not_a_plain_path_is_refused(bad: str) -> None:
    with pytest.raises(NixCommandError):
        FlakeRef(bad)


@pytest.mark.parametrize("bad", ["../up", "/abs", "a/../../b", "a b"])
def test_a_flake_subfolder_that_escapes_is_refused(bad: str) -> None:
    with pytest.raises(NixCommandError):
        FlakeRef("/tmp/co", bad)


@pytest.mark.parametrize("bad", ['web"; builtins.abort "x', "web.config", "", "-web", "we b"])
def test_an_image_type_that_could_break_out_is_refused(bad: str) -> None:
    with pytest.raises(NixCommandError):
        probe_argv(FLAKE, ["db", bad])
    with pytest.raises(NixCommandError):
        build_argv(FLAKE, [(bad, ImageAttr.QCOW2)])


def test_nothing_to_build_is_refused() -> None:
    with pytest.raises(NixCommandError, match="nothing to build"):
        build_argv(FLAKE, [])


def test_add_root_argv() -> None:
    store = "/nix/store/2jfk83mmkmsdhs8jxx82j4492vmfs17k-web-qcow2"
    assert add_root_argv("/var/lib/proxnix/gcroots/ns/fleet/web", store) == [
        "nix-store",
        "--add-root",
        "/var/lib/proxnix/gcroots/ns/fleet/web",
        "--realise",
        store,
    ]
    with pytest.raises(NixCommandError):
        add_root_argv("relative", store)


def test_the_captured_version_of_debians_nix() -> None:
    (captured,) = NIX_FIXTURES.glob("version-*.txt")
    version = parse_version(captured.read_text())
    assert version == NixVersion(2, 8, 0)
    assert not version.has_print_out_paths


@pytest.mark.parametrize(
    ("printed", "expected", "out_paths"),
    [
        ("nix (Nix) 2.18.1\n", NixVersion(2, 18, 1), True),
        ("nix (Nix) 2.9\n", NixVersion(2, 9, 0), True),
        ("nix (Nix) 2.24.10\n", NixVersion(2, 24, 10), True),
    ],
)
def test_versions_and_features(printed: str, expected: NixVersion, out_paths: bool) -> None:
    assert parse_version(printed) == expected
    assert parse_version(printed).has_print_out_paths is out_paths


def test_an_unreadable_version_is_an_error() -> None:
    with pytest.raises(NixCommandError, match="cannot read a nix version"):
        parse_version("Lix, like Nix\n")
