"""Parsers of what nix prints: the probe of image attributes, `nix build --json`, and where the qcow2 is in an output.

nix 2.8 and current nix print the same `nix build --json` shape (`[{drvPath, outputs: {out: ...}}, ...]`; newer
versions add keys such as startTime, which are ignored); its order is not the order of the installables, so built
outputs are matched to images by the output path the probe evaluated.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proxnix.sources.flake.nix_commands import ImageAttr

STORE_PATH_PATTERN = re.compile(r"^/nix/store/[0-9a-z]{32}-[A-Za-z0-9+._?=-]+$")
QCOW2_FILE = "nixos.qcow2"
_FILE_PATH = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*(/[A-Za-z0-9_+][A-Za-z0-9._+-]*)*$")


class NixOutputError(ValueError):
    """nix printed something the operator cannot use."""


@dataclass(frozen=True)
class ImageProbe:
    """Where one configuration's qcow2 is: the attribute, the output path (known before building), the file in it."""

    image_type: str
    attr: ImageAttr
    out_path: str
    file_path: str

    @property
    def image_file(self) -> str:
        """The qcow2's absolute path once built."""
        return posixpath.join(self.out_path, self.file_path)


def _json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise NixOutputError(f"{what} printed no valid JSON: {exc}") from None


def _store_path(value: Any, what: str) -> str:
    if not isinstance(value, str) or not STORE_PATH_PATTERN.fullmatch(value):
        raise NixOutputError(f"{what}: {value!r} is not a nix store path")
    return value


def parse_probe(text: str | bytes, image_types: Sequence[str]) -> dict[str, ImageProbe]:
    """The probe's answer for each asked image type that has a qcow2; types without one are left out."""
    data = _json(text, "the image probe")
    if not isinstance(data, Mapping):
        raise NixOutputError("the image probe did not print an attribute set")
    found: dict[str, ImageProbe] = {}
    for name in image_types:
        entry = data.get(name)
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            raise NixOutputError(f"image probe of {name}: not an attribute set")
        try:
            attr = ImageAttr(str(entry.get("attr")))
        except ValueError:
            raise NixOutputError(f"image probe of {name}: unknown attribute {entry.get('attr')!r}") from None
        out_path = _store_path(entry.get("out"), f"image probe of {name}")
        file_path = QCOW2_FILE if attr is ImageAttr.QCOW2 else entry.get("filePath")
        if (
            not isinstance(file_path, str)
            or not _FILE_PATH.fullmatch(file_path)
            or ".." in file_path.split("/")
        ):
            raise NixOutputError(
                f"nixosConfigurations.{name}.config.system.build.images.qemu has no usable passthru.filePath "
                f"({file_path!r})"
            )
        found[name] = ImageProbe(image_type=name, attr=attr, out_path=out_path, file_path=file_path)
    return found


def parse_build(text: str | bytes) -> set[str]:
    """The `out` paths `nix build --json` reports as built."""
    data = _json(text, "nix build --json")
    if not isinstance(data, list):
        raise NixOutputError("nix build --json did not print a list")
    outs: set[str] = set()
    for item in data:
        outputs = item.get("outputs") if isinstance(item, Mapping) else None
        if not isinstance(outputs, Mapping) or "out" not in outputs:
            raise NixOutputError(f"nix build --json: an entry without outputs.out: {item!r}"[:300])
        outs.add(_store_path(outputs["out"], "nix build --json"))
    return outs


def check_built(probes: Collection[ImageProbe], built: Collection[str]) -> None:
    """Raise unless every probed image's output was built (nix evaluated one path and built another: a bug)."""
    missing = sorted(p.image_type for p in probes if p.out_path not in built)
    if missing:
        raise NixOutputError(f"nix build did not report the outputs of {', '.join(missing)}")


def qcow2_in_listing(out_path: str, names: Collection[str]) -> str:
    """The single `*.qcow2` among an output folder's file names (when the expected file is not there)."""
    candidates = sorted(name for name in names if name.endswith(".qcow2"))
    if len(candidates) != 1:
        raise NixOutputError(
            f"{out_path} holds {len(candidates)} .qcow2 files ({', '.join(candidates) or 'none'}); expected one"
        )
    return posixpath.join(out_path, candidates[0])


def last_lines(log: str, count: int = 20, max_chars: int = 2000) -> str:
    """The tail of a build log for a condition message."""
    tail = "\n".join(log.rstrip("\n").splitlines()[-count:])
    return tail[-max_chars:]
