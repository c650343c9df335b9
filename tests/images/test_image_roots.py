"""Local image sources are served only from the operator's image roots, judged after following links and `..`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from proxnix.adapters.local_images import LocalImageError, LocalImages
from tests.images.conftest import make_qcow2


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_qcow2(tmp_path / "root" / "nixos.qcow2")
    return tmp_path / "root"


async def test_an_image_under_the_root_is_served(root: Path) -> None:
    image = await LocalImages([root]).resolve(str(root / "nixos.qcow2"), None)
    assert image.format == "qcow2"
    assert image.path == (root / "nixos.qcow2").resolve()


async def test_a_link_inside_the_root_to_an_image_inside_it_is_served(root: Path) -> None:
    (root / "current").symlink_to(root / "nixos.qcow2")
    image = await LocalImages([root]).resolve(str(root / "current"), None)
    assert image.path == (root / "nixos.qcow2").resolve()


@pytest.mark.parametrize(
    "source",
    [
        "/etc/passwd",
        "/etc/shadow",
        "{root}/../../../../etc/passwd",
        "{root}/../outside.qcow2",
        "{root}/escape",  # a link inside the root to a file outside it
        "{root}/escapedir/outside.qcow2",  # a link to a folder outside
        "{root}",  # the root itself
        "{root}-sibling/x.qcow2",  # a prefix of the root's name is not the root
        "/proc/self/environ",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ],
)
async def test_anything_outside_the_roots_is_refused(root: Path, source: str) -> None:
    outside = make_qcow2(root.parent / "outside.qcow2")
    (root / "escape").symlink_to(outside)
    (root / "escapedir").symlink_to(root.parent)
    make_qcow2(Path(f"{root}-sibling") / "x.qcow2")
    with pytest.raises(LocalImageError) as caught:
        await LocalImages([root]).resolve(source.format(root=root), None)
    assert caught.value.reason == "ImageSourceForbidden"
    assert caught.value.permanent
    assert "--image-root" in str(caught.value)


async def test_the_default_root_is_the_nix_store_only(root: Path) -> None:
    with pytest.raises(LocalImageError) as caught:
        await LocalImages().resolve(str(root / "nixos.qcow2"), None)
    assert caught.value.reason == "ImageSourceForbidden"
    assert "/nix/store" in str(caught.value)


async def test_a_root_given_through_a_link_is_resolved_too(root: Path, tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(root)
    image = await LocalImages([tmp_path / "alias"]).resolve(str(root / "nixos.qcow2"), None)
    assert image.sha256


async def test_a_qcow2_with_a_backing_file_is_refused(root: Path) -> None:
    # The node would read the backing file (any of its files) into the new disk.
    (root / "base.raw").write_bytes(b"\0" * 65536)
    make_qcow2(root / "overlay.qcow2", backing=root / "base.raw")
    with pytest.raises(LocalImageError, match="backing file") as caught:
        await LocalImages([root]).resolve(str(root / "overlay.qcow2"), None)
    assert caught.value.permanent


@pytest.fixture
def data_file_image(root: Path) -> Path:
    path = root / "datafile.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={root / 'data.raw'}", str(path), "1M"],
        check=True,
    )
    return path


async def test_a_qcow2_with_an_external_data_file_is_refused(root: Path, data_file_image: Path) -> None:
    with pytest.raises(LocalImageError, match="external data file"):
        await LocalImages([root]).resolve(str(data_file_image), None)
