"""URL images: per-URL single flight, deadlines, length and format checks before the file is published, nothing
left in the cache after a failure — against a loopback server that trickles, cuts off and lies about the length."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import time
from pathlib import Path

import pytest

from proxnix.adapters.image_download import DownloadLimits, Downloads
from proxnix.adapters.local_images import LocalImageError, LocalImages
from proxnix_testbed.image_server import ImageServer

FAST = DownloadLimits(connect_timeout_s=2, read_timeout_s=2, total_timeout_s=3, retry_after_s=0)


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def good_sha(served: ImageServer) -> str:
    return hashlib.sha256((served.folder / "good.qcow2").read_bytes()).hexdigest()


async def test_a_download_is_checked_then_published_privately(served: ImageServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    images = LocalImages([], cache_dir=cache, limits=FAST, download_wait_s=30)
    image = await images.resolve(served.url("ok", "good.qcow2"), good_sha(served))
    assert image.format == "qcow2"
    assert image.sha256 == good_sha(served)
    assert cache_files(cache) == [good_sha(served)]
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(image.path).st_mode) == 0o600
    # the next resolve does not download again
    await images.resolve(served.url("ok", "good.qcow2"), good_sha(served))
    assert served.hits["/ok/good.qcow2"] == 1


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (("short", "1000", "good.qcow2"), "cut off"),  # announces the whole file, sends 1000 bytes, closes
        (("lie", "4096", "good.qcow2"), "cut off"),  # announces more than the file
        (("short", "20", "good.qcow2"), "cut off"),  # cut inside the qcow2 header
    ],
)
async def test_a_cut_off_download_is_refused_and_leaves_nothing(
    served: ImageServer, tmp_path: Path, path: tuple[str, ...], words: str
) -> None:
    cache = tmp_path / "cache"
    downloads = Downloads(cache, FAST)
    with pytest.raises(LocalImageError, match=words) as caught:
        await downloads.fetch(served.url(*path), None)
    assert not caught.value.permanent  # the next attempt starts over
    assert cache_files(cache) == []


async def test_a_complete_but_corrupt_qcow2_is_refused_and_leaves_nothing(
    served: ImageServer, tmp_path: Path
) -> None:
    data = (served.folder / "good.qcow2").read_bytes()
    (served.folder / "broken.qcow2").write_bytes(data[:512])  # a header, then nothing the header points at
    cache = tmp_path / "cache"
    with pytest.raises(LocalImageError) as caught:
        await Downloads(cache, FAST).fetch(served.url("ok", "broken.qcow2"), None)
    assert caught.value.permanent
    assert "qcow2" in str(caught.value)
    assert cache_files(cache) == []


async def test_a_trickling_server_hits_the_total_deadline(served: ImageServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    started = time.monotonic()
    with pytest.raises(LocalImageError, match="not complete after 3 s"):
        await Downloads(cache, FAST).fetch(served.url("trickle", "0.2", "good.qcow2"), None)
    assert time.monotonic() - started < 3 + FAST.read_timeout_s + 2
    assert cache_files(cache) == []


async def test_a_silent_server_hits_the_read_deadline(served: ImageServer, tmp_path: Path) -> None:
    limits = DownloadLimits(connect_timeout_s=2, read_timeout_s=1, total_timeout_s=60, retry_after_s=0)
    started = time.monotonic()
    with pytest.raises(LocalImageError, match="timed out"):
        await Downloads(tmp_path / "cache", limits).fetch(served.url("trickle", "30", "good.qcow2"), None)
    assert time.monotonic() - started < 10


async def test_a_slow_url_never_delays_another_url(served: ImageServer, tmp_path: Path) -> None:
    slow_limits = DownloadLimits(connect_timeout_s=2, read_timeout_s=10, total_timeout_s=60, retry_after_s=0)
    images = LocalImages([], cache_dir=tmp_path / "cache", limits=slow_limits, download_wait_s=0.5)
    slow = served.url("trickle", "5", "good.qcow2")
    # The slow download starts; the caller is told at once that it is still running (it goes on in the background).
    with pytest.raises(LocalImageError) as caught:
        await images.resolve(slow, None)
    assert caught.value.reason == "ImageDownloading"
    assert not caught.value.permanent
    started = time.monotonic()
    fast = await asyncio.wait_for(images.resolve(served.url("ok", "good.qcow2"), None), 10)
    assert fast.format == "qcow2"
    assert time.monotonic() - started < 5
    # ... and an already downloaded URL is answered without waiting at all.
    started = time.monotonic()
    await images.resolve(served.url("ok", "good.qcow2"), None)
    assert time.monotonic() - started < 1
    with pytest.raises(LocalImageError, match="still downloading"):
        await images.resolve(slow, None)
    assert served.hits["/trickle/5/good.qcow2"] == 1  # one download per URL, shared
    images.close()


async def test_concurrent_callers_share_one_download(served: ImageServer, tmp_path: Path) -> None:
    downloads = Downloads(tmp_path / "cache", FAST)
    paths = await asyncio.gather(*(downloads.fetch(served.url("ok", "good.qcow2"), None) for _ in range(8)))
    assert len(set(paths)) == 1
    assert served.hits["/ok/good.qcow2"] == 1


async def test_a_sha256_mismatch_is_permanent_and_leaves_nothing(served: ImageServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(LocalImageError, match="spec expects") as caught:
        await Downloads(cache, FAST).fetch(served.url("ok", "good.qcow2"), "0" * 64)
    assert caught.value.permanent
    assert cache_files(cache) == []


async def test_an_http_error_is_reported(served: ImageServer, tmp_path: Path) -> None:
    with pytest.raises(LocalImageError, match="HTTP 404") as caught:
        await Downloads(tmp_path / "cache", FAST).fetch(served.url("status", "404", "good.qcow2"), None)
    assert caught.value.permanent
    with pytest.raises(LocalImageError, match="HTTP 503") as caught:
        await Downloads(tmp_path / "cache", FAST).fetch(served.url("status", "503", "good.qcow2"), None)
    assert not caught.value.permanent


async def test_a_failure_is_remembered_for_a_while(served: ImageServer, tmp_path: Path) -> None:
    limits = DownloadLimits(connect_timeout_s=2, read_timeout_s=2, total_timeout_s=3, retry_after_s=60)
    downloads = Downloads(tmp_path / "cache", limits)
    url = served.url("short", "100", "good.qcow2")
    for _ in range(3):
        with pytest.raises(LocalImageError, match="cut off"):
            await downloads.fetch(url, None)
    assert served.hits["/short/100/good.qcow2"] == 1


async def test_the_operator_flag_requires_a_sha256_for_urls(served: ImageServer, tmp_path: Path) -> None:
    images = LocalImages([], cache_dir=tmp_path / "cache", require_url_sha256=True, download_wait_s=30)
    with pytest.raises(LocalImageError) as caught:
        await images.resolve(served.url("ok", "good.qcow2"), None)
    assert caught.value.reason == "ImageSha256Required"
    assert served.hits["/ok/good.qcow2"] == 0
    image = await images.resolve(served.url("ok", "good.qcow2"), good_sha(served))
    assert image.sha256 == good_sha(served)


async def test_a_shared_cache_folder_is_refused(served: ImageServer, tmp_path: Path) -> None:
    cache = tmp_path / "open"
    cache.mkdir()
    os.chmod(cache, 0o755)  # noqa: S103 (readable by others: what the test is about)
    with pytest.raises(LocalImageError, match="not accessible to others"):
        await Downloads(cache, FAST).fetch(served.url("ok", "good.qcow2"), None)


async def test_after_a_bad_download_the_url_works_once_fixed(served: ImageServer, tmp_path: Path) -> None:
    # Before: a qcow2 cut inside its header stayed cached for its URL until the operator restarted.
    good = (served.folder / "good.qcow2").read_bytes()
    (served.folder / "flaky.qcow2").write_bytes(good[:20])
    downloads = Downloads(tmp_path / "cache", FAST)
    url = served.url("ok", "flaky.qcow2")
    with pytest.raises(LocalImageError):
        await downloads.fetch(url, None)
    assert cache_files(tmp_path / "cache") == []
    (served.folder / "flaky.qcow2").write_bytes(good)
    path = await downloads.fetch(url, None)
    assert path.read_bytes() == good
