"""Image upload to a simulated node (streamed over SSH): content addressing, skip, verification, atomicity, import."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxnix.adapters.image_upload import TRANSFER_BASE_S, transfer_deadline, upload_image
from proxnix.adapters.node_liveness import LivenessSettings, NodeLiveness
from proxnix.adapters.proxmox_client import ProxmoxClient, RetryPolicy
from proxnix.adapters.ssh_pool import PoolSettings, SshPool
from proxnix.proxmox.errors import CommandTimeout, ConnectionLost, ImageError, TransferFailed
from tests.driver.conftest import FAST_RETRY, Sim, SimNode, definition, owner_for
from tests.driver.tcp_proxy import TcpProxy
from tests.support.images import upload_and_import

pytestmark = pytest.mark.e2e


def cache_dir() -> str:
    return f"/var/lib/vz/proxnix-test/{uuid.uuid4().hex[:8]}"


async def listing(pool: SshPool, directory: str) -> dict[str, int]:
    result = await pool.run(
        f'cd {directory} 2>/dev/null && for f in .* *; do [ -f "$f" ] && stat -c \'%n %s\' "$f"; done'
    )
    return {name: int(size) for name, size in (line.rsplit(" ", 1) for line in result.stdout.splitlines())}


@dataclass(frozen=True)
class Image:
    path: Path
    sha256: str
    size: int


@pytest.fixture(scope="module")
def random_image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    path = tmp_path_factory.mktemp("img") / "random.raw"
    data = os.urandom(24 * 1024 * 1024)
    path.write_bytes(data)
    return Image(path, hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture(scope="module")
def qcow2_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "nixos.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1G"], check=True)
    return path


async def test_upload_then_skip(pool: SshPool, random_image: Image) -> None:
    directory = cache_dir()
    sha = random_image.sha256
    uploads_before, bytes_before = pool.stats.uploads, pool.stats.upload_bytes
    first = await upload_image(pool, random_image.path, directory, expected_sha256=sha)
    assert not first.skipped
    assert (pool.stats.uploads, pool.stats.upload_bytes) == (uploads_before + 1, bytes_before + first.size)
    assert first.remote_path == f"{directory}/{sha}.raw"
    assert first.bytes_per_second is not None
    assert first.bytes_per_second > 0
    assert (await pool.run(["sha256sum", first.remote_path])).stdout.split()[0] == sha
    assert await listing(pool, directory) == {f"{sha}.raw": first.size}
    commands_before = pool.stats.commands
    second = await upload_image(pool, random_image.path, directory)
    assert second.skipped
    assert second.remote_path == first.remote_path
    assert pool.stats.commands == commands_before + 1  # one probe, no transfer
    print(f"upload rate: {first.bytes_per_second / 1e6:.1f} MB/s")  # reported with -s


async def test_cached_images_are_readable_by_root_only(pool: SshPool, random_image: Image) -> None:
    directory = cache_dir()
    result = await upload_image(pool, random_image.path, directory, expected_sha256=random_image.sha256)
    modes = (await pool.run(f"stat -c %a {directory} {result.remote_path}")).stdout.split()
    assert modes == ["700", "600"]
    # A cache left open by an older version is closed again by the next upload of the image (a skip).
    await pool.run(f"chmod 755 {directory} && chmod 644 {result.remote_path}")
    again = await upload_image(pool, random_image.path, directory, expected_sha256=random_image.sha256)
    assert again.skipped
    modes = (await pool.run(f"stat -c %a {directory} {result.remote_path}")).stdout.split()
    assert modes == ["700", "600"]


async def test_expected_checksum_mismatch_uploads_nothing(pool: SshPool, random_image: Image) -> None:
    before = pool.stats.commands
    with pytest.raises(ImageError, match="expected"):
        await upload_image(pool, random_image.path, cache_dir(), expected_sha256="0" * 64)
    assert pool.stats.commands == before


async def test_interrupted_upload_never_shows_a_partial_file_under_the_final_name(
    node: SimNode, random_image: Image
) -> None:
    directory = cache_dir()
    sha = random_image.sha256
    final = f"{sha}.raw"
    proxy = await TcpProxy(node.host, node.port).start()
    proxy.rate_limit = 8 * 1024 * 1024
    creds = node.credentials(known_hosts=node.known_hosts_for_port(proxy.port))
    async with (
        SshPool(node.target(proxy.port), creds, PoolSettings(reconnect_initial=0.05)) as pool,
        SshPool(node.target(), node.credentials()) as observer,
    ):
        upload = asyncio.create_task(upload_image(pool, random_image.path, directory, retry=FAST_RETRY))
        deadline = time.monotonic() + 20
        while True:  # wait until a partial file is growing on the node
            files = await listing(observer, directory)
            assert final not in files, "the final name appeared before the upload was verified"
            if any(name.startswith(f".{sha}.partial-") and size > 0 for name, size in files.items()):
                break
            assert time.monotonic() < deadline, "no partial upload appeared"
            await asyncio.sleep(0.02)
        proxy.rate_limit = None
        proxy.drop_all()
        result = await upload
        assert not result.skipped
        files = await listing(observer, directory)
        assert files == {final: random_image.size}  # the interrupted partial was removed
        assert (await observer.run(["sha256sum", result.remote_path])).stdout.split()[0] == sha
        assert proxy.accepted >= 2
    await proxy.close()


@pytest.mark.parametrize("method", ["import-from", "importdisk"])
async def test_upload_and_import(sim: Sim, client: ProxmoxClient, qcow2_image: Path, method: str) -> None:
    vmid, owner = sim.vmid(), owner_for("imported")
    await client.create_vm(definition(vmid, "imported"), owner)
    upload, disk = await upload_and_import(
        client,
        qcow2_image,
        cache_dir(),
        vmid,
        owner.uid,
        slot="scsi0",
        storage="local-lvm",
        method=method,  # type: ignore[arg-type]
    )
    assert upload.format == "qcow2"
    assert disk.slot == "scsi0"
    config = await client.read_config(vmid)
    assert config.drives()["scsi0"].volume == disk.volume
    assert config.boot_order == ["scsi0"]
    assert config.disk_size_bytes() == 1024**3
    assert not [k for k in config.values if k.startswith("unused")]


async def test_create_with_import_from_in_one_call(
    sim: Sim, client: ProxmoxClient, qcow2_image: Path
) -> None:
    vmid, owner = sim.vmid(), owner_for("onecall")
    upload = await upload_image(client.pool, qcow2_image, cache_dir())
    since = time.time()
    config = await client.create_vm(definition(vmid, "onecall"), owner, import_from=upload.remote_path)
    assert [c.argv[:2] for c in sim.calls("pve1") if c.ts >= since] == [("qm", "create")]
    assert config.boot_disk == "scsi0"
    assert config.disk_size_bytes() == 1024**3


async def test_upload_that_does_not_verify_is_never_published(node: SimNode, tmp_path: Path) -> None:
    """The local file changes during the transfer: the node's sha256 differs, the partial file is deleted, nothing
    appears under the final name, and after the bounded retries the error is reported."""
    local = tmp_path / "changing.raw"
    await asyncio.to_thread(local.write_bytes, b"\x01" * (16 * 1024 * 1024))
    sha = await asyncio.to_thread(lambda: hashlib.sha256(local.read_bytes()).hexdigest())
    directory = cache_dir()
    proxy = await TcpProxy(node.host, node.port).start()
    proxy.rate_limit = 8 * 1024 * 1024
    creds = node.credentials(known_hosts=node.known_hosts_for_port(proxy.port))
    async with (
        SshPool(node.target(proxy.port), creds) as pool,
        SshPool(node.target(), node.credentials()) as observer,
    ):
        upload = asyncio.create_task(
            upload_image(pool, local, directory, retry=RetryPolicy(attempts=2, initial_delay=0.01))
        )
        deadline = time.monotonic() + 20
        while not any(name.startswith(f".{sha}.partial-") for name in await listing(observer, directory)):
            assert time.monotonic() < deadline, "no partial upload appeared"
            await asyncio.sleep(0.02)
        await asyncio.to_thread(local.write_bytes, b"\x02" * (16 * 1024 * 1024))  # same size, other bytes
        proxy.rate_limit = None
        with pytest.raises(TransferFailed, match="did not verify"):
            await upload
        assert await listing(observer, directory) == {}
    await proxy.close()


async def test_a_vouched_hash_is_still_verified_on_the_node(pool: SshPool, random_image: Image) -> None:
    # The caller hashed the file itself (hashed=True): the file is not read twice, but a wrong hash is caught on
    # the node and nothing is published under the final name.
    directory = cache_dir()
    wrong = "1" * 64
    with pytest.raises(TransferFailed, match="did not verify"):
        await upload_image(
            pool,
            random_image.path,
            directory,
            expected_sha256=wrong,
            hashed=True,
            retry=RetryPolicy(attempts=1),
        )
    assert await listing(pool, directory) == {}
    good = await upload_image(
        pool, random_image.path, directory, expected_sha256=random_image.sha256, hashed=True
    )
    assert not good.skipped
    assert await listing(pool, directory) == {f"{random_image.sha256}.raw": random_image.size}


@dataclass
class SlowLink:
    """A pool to the node through a throttled proxy, and an observer pool on a direct connection."""

    pool: SshPool
    observer: SshPool
    proxy: TcpProxy


@pytest.fixture
async def slow_link(node: SimNode) -> AsyncIterator[SlowLink]:
    proxy = await TcpProxy(node.host, node.port).start()
    creds = node.credentials(known_hosts=node.known_hosts_for_port(proxy.port))
    async with (
        SshPool(node.target(proxy.port), creds, PoolSettings(reconnect_initial=0.05)) as pool,
        SshPool(node.target(), node.credentials()) as observer,
    ):
        await pool.check()  # connected before the throttle
        proxy.rate_limit = 4 * 1024 * 1024
        yield SlowLink(pool, observer, proxy)
    await proxy.close()


async def wait_for_partial(observer: SshPool, directory: str, sha: str, *, at_least: int = 1) -> None:
    deadline = time.monotonic() + 20
    while True:
        files = await listing(observer, directory)
        assert f"{sha}.raw" not in files, "the final name appeared before the upload was verified"
        if any(name.startswith(f".{sha}.partial-") and size >= at_least for name, size in files.items()):
            return
        assert time.monotonic() < deadline, "no partial upload appeared"
        await asyncio.sleep(0.02)


async def wait_for_listing(observer: SshPool, directory: str, expected: dict[str, int]) -> None:
    deadline = time.monotonic() + 20
    while (files := await listing(observer, directory)) != expected:
        assert time.monotonic() < deadline, f"the cache folder still holds {files}"
        await asyncio.sleep(0.05)


async def test_cancelled_upload_leaves_nothing_on_the_node(slow_link: SlowLink, random_image: Image) -> None:
    directory = cache_dir()
    upload = asyncio.create_task(
        upload_image(
            slow_link.pool, random_image.path, directory, expected_sha256=random_image.sha256, hashed=True
        )
    )
    await wait_for_partial(slow_link.observer, directory, random_image.sha256)
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    await wait_for_listing(slow_link.observer, directory, {})


async def test_dropped_connection_without_retries_leaves_nothing(
    slow_link: SlowLink, random_image: Image
) -> None:
    directory = cache_dir()
    upload = asyncio.create_task(
        upload_image(
            slow_link.pool,
            random_image.path,
            directory,
            expected_sha256=random_image.sha256,
            hashed=True,
            retry=RetryPolicy(attempts=1),
        )
    )
    await wait_for_partial(slow_link.observer, directory, random_image.sha256)
    slow_link.proxy.drop_all()
    with pytest.raises(ConnectionLost):
        await upload
    # Nothing under the final name, no partial file left (the node removes it on the short stream; the client
    # also tries, best effort).
    await wait_for_listing(slow_link.observer, directory, {})


async def test_a_file_that_shrinks_during_the_upload_is_never_published(
    slow_link: SlowLink, tmp_path: Path
) -> None:
    local = tmp_path / "shrinking.raw"
    data = os.urandom(16 * 1024 * 1024)
    await asyncio.to_thread(local.write_bytes, data)
    sha = hashlib.sha256(data).hexdigest()
    directory = cache_dir()
    upload = asyncio.create_task(
        upload_image(
            slow_link.pool, local, directory, expected_sha256=sha, hashed=True, retry=RetryPolicy(attempts=1)
        )
    )
    await wait_for_partial(slow_link.observer, directory, sha)
    await asyncio.to_thread(os.truncate, local, 1024 * 1024)  # the stream ends early (at whatever was read)
    slow_link.proxy.rate_limit = None
    with pytest.raises(
        TransferFailed, match=rf"did not verify: the node received [0-9]+ of {len(data)} bytes"
    ):
        await upload
    assert await listing(slow_link.observer, directory) == {}


async def test_upload_past_its_deadline_is_killed_on_the_node(
    slow_link: SlowLink, random_image: Image
) -> None:
    directory = cache_dir()
    with pytest.raises(CommandTimeout):
        await upload_image(
            slow_link.pool, random_image.path, directory, expected_sha256=random_image.sha256, hashed=True,
            retry=RetryPolicy(attempts=1), transfer_timeout_s=1.0,
        )  # fmt: skip
    await wait_for_listing(slow_link.observer, directory, {})


async def test_node_stays_alive_during_a_full_speed_upload(
    node: SimNode, pool: SshPool, tmp_path: Path
) -> None:
    """The upload runs flat out on the command pool (CPU-bound on this event loop); the liveness pings, on a pool
    of their own, keep answering within their timeout all along."""
    local = tmp_path / "zeros.raw"
    size = 384 * 1024 * 1024
    await asyncio.to_thread(local.touch)
    await asyncio.to_thread(os.truncate, local, size)
    sha = await asyncio.to_thread(lambda: hashlib.sha256(bytes(size)).hexdigest())
    settings = LivenessSettings(interval_s=0.2, timeout_s=1.0, retry_s=0.1, failures_to_down=2)
    async with SshPool(node.target(), node.credentials(), PoolSettings(max_sessions=1)) as ping_pool:
        probe = NodeLiveness(ping_pool, node.name, settings)
        probe.start()
        try:
            assert (await asyncio.wait_for(probe.wait_until(True), 10)).alive is True
            pings_before = ping_pool.stats.commands
            upload = asyncio.create_task(
                upload_image(pool, local, cache_dir(), expected_sha256=sha, hashed=True)
            )
            while not upload.done():
                assert probe.state().alive is True
                await asyncio.sleep(0.05)
            result = await upload
            assert not result.skipped
            assert probe.state().alive is True
            # It pinged all along (every interval_s), not only before and after.
            assert ping_pool.stats.commands - pings_before >= result.seconds / settings.interval_s / 2
        finally:
            await probe.stop()


def test_the_transfer_deadline_grows_with_the_image() -> None:
    ten_gib = 10 * 1024**3
    assert transfer_deadline(0) == TRANSFER_BASE_S
    # 10 GiB at 20 Mbit/s takes about 4,300 s: it must fit, with room
    assert transfer_deadline(ten_gib) > ten_gib / (20e6 / 8)
    assert transfer_deadline(2 * ten_gib) > transfer_deadline(ten_gib)
