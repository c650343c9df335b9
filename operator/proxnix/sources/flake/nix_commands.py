"""nix command lines: evaluate the `proxnix` output, probe which image attribute each used configuration has, build
exactly the used images in one invocation; and what the installed nix version can do.

Every value placed into an argv or a nix expression is validated first (absolute paths of a fixed charset, image
types matching IMAGE_TYPE_PATTERN and written as nix string literals). Nothing here adds `--option`s: the operator
passes the machine's nix configuration (nix.conf, NIX_CONFIG — e.g. `builders` for remote builders) through untouched.
`--no-update-lock-file` makes a flake whose lock is stale fail loudly instead of being rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from proxnix.sources.flake.vms import IMAGE_TYPE_PATTERN

NIX = "nix"
_LOCK_FLAGS = ("--no-update-lock-file",)
_DIR_PATTERN = re.compile(r"^/[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$")
_SUBDIR_PATTERN = re.compile(r"^(\.|[A-Za-z0-9_][A-Za-z0-9._+-]*(/[A-Za-z0-9_][A-Za-z0-9._+-]*)*)$")
_VERSION = re.compile(r"\bnix \(Nix\) (\d+)\.(\d+)(?:\.(\d+))?")


class NixCommandError(ValueError):
    """A value cannot be placed on a nix command line."""


class ImageAttr(StrEnum):
    """Where a nixosConfiguration keeps its qcow2."""

    QCOW2 = "qcow2"  # config.system.build.qcow2: <out>/nixos.qcow2 (make-disk-image)
    IMAGES_QEMU = "images.qemu"  # config.system.build.images.qemu: <out>/<passthru.filePath> (NixOS 25.05+)


@dataclass(frozen=True, order=True)
class NixVersion:
    """The installed nix's version and the features the operator cares about."""

    major: int
    minor: int
    patch: int = 0

    @property
    def has_print_out_paths(self) -> bool:
        """`nix build --print-out-paths` (2.9+); `--json`, which the operator uses, exists in 2.8 too."""
        return (self.major, self.minor) >= (2, 9)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


MINIMUM_VERSION = NixVersion(2, 8)


def version_argv() -> list[str]:
    return [NIX, "--version"]


def parse_version(output: str) -> NixVersion:
    """The version `nix --version` printed, e.g. `nix (Nix) 2.8.0`."""
    match = _VERSION.search(output)
    if match is None:
        raise NixCommandError(f"cannot read a nix version from {output.strip()[:200]!r}")
    major, minor, patch = match.groups()
    return NixVersion(int(major), int(minor), int(patch or 0))


@dataclass(frozen=True)
class FlakeRef:
    """A flake in a checked-out folder, referenced by path (a `path:` flake: exactly the files in the folder)."""

    checkout: str
    subdir: str = "."

    def __post_init__(self) -> None:
        if not _DIR_PATTERN.fullmatch(self.checkout):
            raise NixCommandError(f"checkout folder {self.checkout!r} is not a plain absolute path")
        if not _SUBDIR_PATTERN.fullmatch(self.subdir):
            raise NixCommandError(f"flake path {self.subdir!r} is not a plain relative folder")

    def __str__(self) -> str:
        folder = self.checkout if self.subdir == "." else f"{self.checkout}/{self.subdir}"
        return f"path:{folder}"

    def attr(self, path: str) -> str:
        return f"{self}#{path}"


def _image_type(name: str) -> str:
    if not re.fullmatch(IMAGE_TYPE_PATTERN, name):
        raise NixCommandError(f"image type {name!r} does not match {IMAGE_TYPE_PATTERN}")
    return name


def eval_argv(flake: FlakeRef) -> list[str]:
    """Evaluate the `proxnix` output as JSON."""
    return [NIX, "eval", "--json", *_LOCK_FLAGS, flake.attr("proxnix")]


def probe_expression(image_types: Sequence[str]) -> str:
    """A function of `nixosConfigurations` giving, per used image type, where its qcow2 is and its output path.

    `{<name>: null | {attr, out, filePath}}` (not `outPath`: nix prints a set with an outPath as that string): null when the flake has no such configuration or it has neither
    `system.build.qcow2` nor `system.build.images.qemu`. Evaluating outPath builds nothing.
    """
    names = " ".join(f'"{_image_type(name)}"' for name in image_types)
    return (
        "cs: builtins.listToAttrs (map (n: { name = n; value = "
        "if !(builtins.hasAttr n cs) then null else "
        "let b = (builtins.getAttr n cs).config.system.build or { }; in "
        f'if b ? qcow2 then {{ attr = "{ImageAttr.QCOW2}"; out = b.qcow2.outPath; filePath = null; }} '
        "else if (b.images or { }) ? qemu then "
        f'{{ attr = "{ImageAttr.IMAGES_QEMU}"; out = b.images.qemu.outPath; '
        "filePath = b.images.qemu.passthru.filePath or (b.images.qemu.filePath or null); } "
        f"else null; }}) [ {names} ])"
    )


def probe_argv(flake: FlakeRef, image_types: Sequence[str]) -> list[str]:
    """Evaluate where each used image type's qcow2 is (see `probe_expression`)."""
    return [
        NIX,
        "eval",
        "--json",
        *_LOCK_FLAGS,
        flake.attr("nixosConfigurations"),
        "--apply",
        probe_expression(image_types),
    ]


def installable(flake: FlakeRef, image_type: str, attr: ImageAttr) -> str:
    return flake.attr(f"nixosConfigurations.{_image_type(image_type)}.config.system.build.{attr}")


def build_argv(flake: FlakeRef, images: Sequence[tuple[str, ImageAttr]]) -> list[str]:
    """Build exactly these images in one nix invocation (nix builds them in parallel, up to `max-jobs`).

    `--no-link`: the operator keeps images alive with its own GC roots; `-L`: build logs on stderr, for the log file.
    """
    if not images:
        raise NixCommandError("nothing to build")
    return [
        NIX,
        "build",
        "--json",
        "--no-link",
        "-L",
        *_LOCK_FLAGS,
        *(installable(flake, name, attr) for name, attr in images),
    ]


def add_root_argv(root: str, store_path: str) -> list[str]:
    """Register `root` (a symlink the operator owns) as a GC root of `store_path` (`nix-store --add-root`)."""
    if not _DIR_PATTERN.fullmatch(root) or not _DIR_PATTERN.fullmatch(store_path):
        raise NixCommandError("GC root and store path must be plain absolute paths")
    return ["nix-store", "--add-root", root, "--realise", store_path]
