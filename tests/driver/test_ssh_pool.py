"""The SSH pool against a real sshd (a pvesim node): host keys, TOFU, the session limit, timeouts, drops."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from proxnix.api.proxmoxnode import HostKeyPolicy, ProxmoxNodeSpec
from proxnix.proxmox.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyMismatch,
    ImageError,
    NodeUnreachable,
    PoolClosed,
)
from tests.driver.conftest import Sim, SimNode, remote_process_exists
from tests.driver.tcp_proxy import TcpProxy
from tests.support.ssh import PoolSettings, SshCredentials, SshPool

pytestmark = pytest.mark.e2e


def expected_fingerprint(known_hosts_line: str, tmp_path: Path) -> str:
    """SHA256 fingerprint of a known_hosts line, computed by ssh-keygen (independently of the pool)."""
    f = tmp_path / "kh"
    f.write_text(known_hosts_line + "\n")
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(f)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[1]


async def test_runs_commands_with_quoting(pool: SshPool) -> None:
    result = await pool.run(["printf", "%s|", "a b", "it's", "$HOME", "`id`", "x;y"])
    assert result.exit_status == 0
    assert result.stdout == "a b|it's|$HOME|`id`|x;y|"
    failed = await pool.run("echo oops >&2; exit 3")
    assert (failed.exit_status, failed.stderr) == (3, "oops\n")
    fed = await pool.run(["cat"], stdin=b"from stdin")
    assert fed.stdout == "from stdin"


async def test_wrong_host_key_is_refused_with_a_clear_error(sim: Sim, node: SimNode, tmp_path: Path) -> None:
    other = sim.nodes["pve2"]
    # node pve2's key, written for pve1's address: a host that presents a different key
    wrong = f"[{node.host}]:{node.port} {other.known_hosts_line().split(' ', 1)[1]}\n"
    pool = SshPool(node.target(), node.credentials(known_hosts=wrong))
    with pytest.raises(HostKeyMismatch) as info:
        await pool.run("true")
    message = str(info.value)
    assert "not in known_hosts" in message
    assert f"[{node.host}]:{node.port}" in message
    assert expected_fingerprint(node.known_hosts_line(), tmp_path) in message  # the key the node presented
    assert not info.value.transient
    await pool.close()


async def test_verify_with_empty_known_hosts_is_refused(node: SimNode) -> None:
    async with SshPool(node.target(), node.credentials(known_hosts="")) as pool:
        with pytest.raises(HostKeyMismatch, match="known_hosts is empty and hostKeyPolicy is Verify"):
            await pool.run("true")


async def test_trust_on_first_use_records_and_pins_the_fingerprint(node: SimNode, tmp_path: Path) -> None:
    fingerprint = expected_fingerprint(node.known_hosts_line(), tmp_path)
    async with SshPool(node.target(), node.credentials(known_hosts="", trust_on_first_use=True)) as pool:
        assert (await pool.run("echo ok")).stdout == "ok\n"
        assert pool.trusted_on_first_use
        assert pool.host_key_fingerprint == fingerprint
        assert pool.accepted_known_hosts_line.split()[1:] == node.known_hosts_line().split()[1:]
    # After a restart the recorded fingerprint is passed back: it must match.
    pinned = node.credentials(known_hosts="", trust_on_first_use=True, pinned_fingerprint=fingerprint)
    async with SshPool(node.target(), pinned) as pool:
        await pool.run("true")
        assert not pool.trusted_on_first_use
    wrong = node.credentials(known_hosts="", trust_on_first_use=True, pinned_fingerprint="SHA256:" + "A" * 43)
    async with SshPool(node.target(), wrong) as pool:
        with pytest.raises(HostKeyMismatch, match="host key changed"):
            await pool.run("true")


async def test_tofu_is_ignored_when_known_hosts_is_set(sim: Sim, node: SimNode) -> None:
    other_key = sim.nodes["pve2"].known_hosts_line().split(" ", 1)[1]
    creds = node.credentials(known_hosts=f"[{node.host}]:{node.port} {other_key}\n", trust_on_first_use=True)
    async with SshPool(node.target(), creds) as pool:
        with pytest.raises(HostKeyMismatch):
            await pool.run("true")


async def test_bad_private_key_is_a_clear_permanent_error(node: SimNode) -> None:
    async with SshPool(node.target(), node.credentials(private_key=b"not a key")) as pool:
        with pytest.raises(AuthenticationFailed, match="private key") as info:
            await pool.run("true")
    assert "not a key" not in str(info.value)
    assert "redacted" in repr(node.credentials())


async def test_concurrency_limit_is_respected(node: SimNode) -> None:
    settings = PoolSettings(max_sessions=3, sessions_per_connection=2)
    async with SshPool(node.target(), node.credentials(), settings) as pool:
        script = "date +%s.%N; sleep 0.4; date +%s.%N"
        results = await asyncio.gather(*(pool.run(script) for _ in range(9)))
        spans = [tuple(float(x) for x in r.stdout.split()) for r in results]
        events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
        running = peak = 0
        for _, delta in events:
            running += delta
            peak = max(peak, running)
        assert peak == 3  # measured on the node: never more than 3 at once, and the 3 slots are used
        assert pool.stats.peak_active == 3
        assert pool.stats.connections_opened == 2  # 3 sessions, at most 2 per connection
        await pool.run("true")
        assert pool.stats.connections_opened == 2  # reused


async def test_command_timeout_kills_the_remote_process(pool: SshPool) -> None:
    marker = f"{uuid.uuid4().int % 10**6 + 1000}.5"
    started = time.monotonic()
    running = asyncio.create_task(pool.run(f"sleep {marker}", timeout_s=1))
    deadline = time.monotonic() + 10
    while not await remote_process_exists(f"sleep {marker}"):  # it really started on the node
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    with pytest.raises(CommandTimeout) as info:
        await running
    assert time.monotonic() - started < 8
    assert info.value.transient
    while await remote_process_exists(f"sleep {marker}"):
        assert time.monotonic() < deadline, "the remote command survived its timeout"
        await asyncio.sleep(0.1)
    assert (await pool.run("echo alive")).stdout == "alive\n"  # the pool is still usable


async def test_dropped_connection_reconnects(node: SimNode) -> None:
    proxy = await TcpProxy(node.host, node.port).start()
    creds = node.credentials(known_hosts=node.known_hosts_for_port(proxy.port))
    async with SshPool(node.target(proxy.port), creds, PoolSettings(reconnect_initial=0.05)) as pool:
        assert (await pool.run("echo one")).stdout == "one\n"
        marker = f"{uuid.uuid4().int % 10**6 + 1000}.25"
        running = asyncio.create_task(pool.run(f"sleep {marker}; echo never"))
        deadline = time.monotonic() + 10
        while not await remote_process_exists(f"sleep {marker}"):  # the command is running on the node
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        proxy.drop_all()
        with pytest.raises(ConnectionLost) as info:
            await running
        assert info.value.ambiguous  # the command was sent: it may have run
        assert (await pool.run("echo two")).stdout == "two\n"
        assert pool.stats.connections_opened == 2
        assert proxy.accepted == 2
    await proxy.close()


async def test_unreachable_node_backs_off_then_recovers(node: SimNode) -> None:
    proxy = await TcpProxy(node.host, node.port).start()
    creds = node.credentials(known_hosts=node.known_hosts_for_port(proxy.port))
    settings = PoolSettings(reconnect_initial=0.2, reconnect_max=0.4, connect_timeout=5)
    async with SshPool(node.target(proxy.port), creds, settings) as pool:
        proxy.refusing = True
        with pytest.raises(NodeUnreachable):
            await pool.run("true")
        started = time.monotonic()
        with pytest.raises(NodeUnreachable):
            await pool.run("true")
        assert time.monotonic() - started >= 0.15  # waited for the backoff before trying again
        assert pool.stats.connect_failures == 2
        proxy.refusing = False
        assert (await pool.run("echo back")).stdout == "back\n"
    await proxy.close()


async def test_a_file_streamed_to_a_command(pool: SshPool, tmp_path: Path) -> None:
    local = tmp_path / "blob"
    data = os.urandom(5 * 1024 * 1024 + 17)  # several chunks and SSH windows, not a multiple of either
    local.write_bytes(data)
    result = await pool.run_with_file("sha256sum", local, timeout_s=30)
    assert result.exit_status == 0
    assert result.stdout.split() == [hashlib.sha256(data).hexdigest(), "-"]
    assert pool.stats.active == 0


async def test_a_command_that_stops_reading_its_stream_returns_its_result(
    pool: SshPool, tmp_path: Path
) -> None:
    local = tmp_path / "blob"
    local.write_bytes(os.urandom(8 * 1024 * 1024))
    result = await pool.run_with_file("head -c 10 >/dev/null; echo stopped; exit 3", local, timeout_s=30)
    assert (result.exit_status, result.stdout) == (3, "stopped\n")
    assert (await pool.run("echo still usable")).stdout == "still usable\n"


async def test_a_file_that_cannot_be_read_is_an_image_error(pool: SshPool, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read"):
        await pool.run_with_file("cat >/dev/null", tmp_path / "missing", timeout_s=30)
    with pytest.raises(ImageError, match="cannot read"):
        await pool.run_with_file("cat >/dev/null", tmp_path, timeout_s=30)  # a folder: read() fails
    assert pool.stats.active == 0
    assert (await pool.run("echo still usable")).stdout == "still usable\n"


def test_credentials_from_secret() -> None:
    creds = SshCredentials.from_secret({"ssh-privatekey": b"KEY", "known_hosts": b"h ssh-ed25519 AAAA\n"})
    assert creds.private_key == b"KEY"
    assert creds.known_hosts == "h ssh-ed25519 AAAA\n"
    assert "KEY" not in repr(creds)
    with pytest.raises(AuthenticationFailed):
        SshCredentials.from_secret({"known_hosts": b""})


async def test_pool_for_a_proxmox_node_spec(node: SimNode) -> None:
    spec = ProxmoxNodeSpec.model_validate(
        {
            "host": node.host,
            "port": node.port,
            "credentialsSecretRef": {"name": "pve1-ssh"},
            "hostKeyPolicy": "TrustOnFirstUse",
            "maxSessions": 2,
        }
    )
    secret = {"ssh-privatekey": node.credentials().private_key, "known_hosts": b""}
    pool = SshPool.for_node(spec, secret, node_name=node.name)
    assert pool.settings.max_sessions == 2
    fingerprint = await pool.check()
    assert pool.trusted_on_first_use
    await pool.close()
    with pytest.raises(PoolClosed):
        await pool.run("true")
    again = SshPool.for_node(spec, secret, node_name=node.name, recorded_fingerprint=fingerprint)
    assert await again.check() == fingerprint
    assert not again.trusted_on_first_use
    await again.close()
    strict = spec.model_copy(update={"host_key_policy": HostKeyPolicy.VERIFY})
    async with SshPool.for_node(strict, secret, node_name=node.name) as refused:
        with pytest.raises(HostKeyMismatch):
            await refused.check()


async def test_cancelling_a_command_ends_it_on_the_node(pool: SshPool) -> None:
    marker = f"{uuid.uuid4().int % 10**6 + 1000}.75"
    running = asyncio.create_task(pool.run(f"sleep {marker}", timeout_s=60))
    deadline = time.monotonic() + 10
    while not await remote_process_exists(f"sleep {marker}"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    while await remote_process_exists(f"sleep {marker}"):
        assert time.monotonic() < deadline, "the cancelled command kept running on the node"
        await asyncio.sleep(0.1)
    assert pool.stats.active == 0


async def test_empty_stdin_is_an_immediate_eof(pool: SshPool) -> None:
    result = await asyncio.wait_for(pool.run(["cat"], stdin=b""), timeout=10)
    assert (result.exit_status, result.stdout) == (0, "")


async def test_a_dropped_connection_ends_the_remote_command(node: SimNode) -> None:
    proxy = await TcpProxy(node.host, node.port).start()
    creds = node.credentials(known_hosts=node.known_hosts_for_port(proxy.port))
    marker = f"{uuid.uuid4().int % 10**6 + 1000}.125"
    async with SshPool(node.target(proxy.port), creds) as pool:
        running = asyncio.create_task(pool.run(f"sleep {marker}", timeout_s=60))
        deadline = time.monotonic() + 10
        while not await remote_process_exists(f"sleep {marker}"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        proxy.drop_all()
        with pytest.raises(ConnectionLost):
            await running
        while await remote_process_exists(f"sleep {marker}"):
            assert time.monotonic() < deadline, "the command outlived its connection"
            await asyncio.sleep(0.1)
    await proxy.close()


async def test_a_change_runs_to_completion_after_a_drop(node: SimNode) -> None:
    """Non-interruptible commands (the client's changes) finish on the node even when the connection dies."""
    proxy = await TcpProxy(node.host, node.port).start()
    creds = node.credentials(known_hosts=node.known_hosts_for_port(proxy.port))
    base = f"/var/lib/vz/proxnix-test-{uuid.uuid4().hex}"
    script = f"touch {base}.started; while [ ! -e {base}.go ]; do sleep 0.05; done; touch {base}.done"

    async def exists(observer: SshPool, suffix: str) -> bool:
        return (await observer.run(["test", "-e", base + suffix])).exit_status == 0

    async with (
        SshPool(node.target(proxy.port), creds) as pool,
        SshPool(node.target(), node.credentials()) as observer,
    ):
        running = asyncio.create_task(pool.run(script, interruptible=False))
        deadline = time.monotonic() + 10
        while not await exists(observer, ".started"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        proxy.drop_all()
        with pytest.raises(ConnectionLost):
            await running
        assert not await exists(observer, ".done")
        await observer.run(["touch", base + ".go"])  # let it finish now
        while not await exists(observer, ".done"):
            assert time.monotonic() < deadline, "the change did not complete after the drop"
            await asyncio.sleep(0.05)
        await observer.run(f"rm -f {base}.*")
    await proxy.close()
