"""The SSH pool of one Proxmox node: the only module that imports asyncssh.

What it owns:
- connections to one node, reused and kept alive (SSH keepalives), each carrying several sessions (channels);
- at most `max_sessions` commands (or file streams) at once on the node;
- reconnection with exponential backoff after a drop or a failed connect;
- a timeout on every command: the remote command runs under coreutils `timeout` (so it dies on the node at the
  deadline even when the connection is gone); for interruptible commands (reads) a watcher on the session's stdin
  also ends it as soon as the channel closes (a cancelled call, a dropped connection); locally the channel is
  closed when the deadline passes;
- host key verification against the Secret's known_hosts; trust-on-first-use only when explicitly enabled and
  known_hosts is empty: the first key is accepted, pinned for the pool's life, and its fingerprint exposed so the
  controller can record it (and pass it back as `pinned_fingerprint` after a restart);
- the private key taken from bytes (the Secret) — never logged, never written to disk;
- a local file streamed to a command's stdin over the same connections (`SshPool.run_with_file`, image uploads),
  counted against the session limit; connections prefer AES-GCM and batch their writes (`_BatchingTransport`),
  which is what makes such a stream about as fast as OpenSSH's scp (hack/bench/upload.py).

Transport failures are raised as the driver's exceptions (`proxnix.proxmox.errors`): ConnectionLost,
NodeUnreachable, CommandTimeout (transient); HostKeyMismatch, AuthenticationFailed (permanent). A command that
ran and exited non-zero is NOT an exception here: the result is returned for the client to classify.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shlex
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import asyncssh

from proxnix.proxmox.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyMismatch,
    ImageError,
    NodeUnreachable,
    PoolClosed,
)
from proxnix.proxmox.shell import command_kind, shell_join

log = logging.getLogger(__name__)

PRIVATE_KEY_FIELD = "ssh-privatekey"
KNOWN_HOSTS_FIELD = "known_hosts"
# Exit status of coreutils `timeout` when the command timed out (and after the KILL that follows).
TIMEOUT_EXIT = 124
KILLED_EXIT = 137
MAX_DISPLAY = 200
# Pieces in which `SshPool.run_with_file` reads the file it streams.
STREAM_CHUNK = 1024 * 1024
# Ciphers tried first (then asyncssh's defaults, so any node still connects). Image uploads are CPU-bound in this
# process: AES-GCM runs in OpenSSL on the CPU's AES instructions and needs no separate MAC; chacha20-poly1305,
# asyncssh's (and OpenSSH's) first choice, costs about twice the CPU per byte here. See hack/bench/upload.py.
PREFERRED_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"


@dataclass(frozen=True)
class SshTarget:
    """Where the node's sshd listens, and the node's name for messages."""

    host: str
    port: int = 22
    user: str = "root"
    node: str = ""

    @property
    def known_hosts_name(self) -> str:
        """The host as a known_hosts line names it: `host`, or `[host]:port` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.known_hosts_name}"


@dataclass(frozen=True, repr=False)
class SshCredentials:
    """The client key and host-key policy. `repr` never shows the key."""

    private_key: bytes
    known_hosts: str = ""
    trust_on_first_use: bool = False
    pinned_fingerprint: str = ""

    def __repr__(self) -> str:
        return (
            f"SshCredentials(private_key=<redacted>, known_hosts={len(self.known_hosts.splitlines())} lines, "
            f"trust_on_first_use={self.trust_on_first_use}, pinned_fingerprint={self.pinned_fingerprint!r})"
        )

    @classmethod
    def from_secret(
        cls,
        data: Mapping[str, bytes | str],
        *,
        trust_on_first_use: bool = False,
        pinned_fingerprint: str = "",
    ) -> SshCredentials:
        """From a Secret's (decoded) data: `ssh-privatekey` and `known_hosts`."""
        key = data.get(PRIVATE_KEY_FIELD)
        if not key:
            raise AuthenticationFailed(f"the Secret has no {PRIVATE_KEY_FIELD!r} key")
        known = data.get(KNOWN_HOSTS_FIELD, b"")
        return cls(
            private_key=key.encode() if isinstance(key, str) else bytes(key),
            known_hosts=known.decode("utf-8", "replace") if isinstance(known, bytes) else known,
            trust_on_first_use=trust_on_first_use,
            pinned_fingerprint=pinned_fingerprint,
        )


@dataclass(frozen=True)
class PoolSettings:
    """Tuning of one pool. Times in seconds."""

    max_sessions: int = 4
    sessions_per_connection: int = 8  # below OpenSSH's default MaxSessions (10)
    connect_timeout: float = 15.0
    command_timeout: float = 120.0
    kill_grace: float = 5.0  # `timeout -k`: KILL this long after TERM
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    close_timeout: float = 5.0


@dataclass(frozen=True)
class CommandResult:
    """A command that ran to completion on the node (any exit status)."""

    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration: float
    stdout_bytes: bytes = b""

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


# Upper bounds (seconds) of the command latency buckets kept per kind of command (`CommandTally.buckets`).
LATENCY_BOUNDS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass
class CommandTally:
    """Commands of one kind (`proxnix.proxmox.shell.command_kind`) run on the node: how many, how many failed (a
    non-zero exit), their total seconds, and how many fell in each `LATENCY_BOUNDS` bucket (not cumulative)."""

    count: int = 0
    failures: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BOUNDS))

    def record(self, seconds: float, ok: bool) -> None:
        self.count += 1
        self.failures += 0 if ok else 1
        self.seconds += seconds
        for i, bound in enumerate(LATENCY_BOUNDS):
            if seconds <= bound:
                self.buckets[i] += 1
                break


@dataclass
class PoolStats:
    """Counters for tests, benchmarks and metrics (the operator's /metrics reads them at scrape time)."""

    active: int = 0
    peak_active: int = 0
    commands: int = 0
    connections_opened: int = 0
    connections_lost: int = 0
    connect_failures: int = 0
    by_kind: dict[str, CommandTally] = field(default_factory=dict)
    uploads: int = 0
    upload_bytes: int = 0
    upload_seconds: float = 0.0

    def record_command(self, command: str, seconds: float, exit_status: int) -> None:
        self.by_kind.setdefault(command_kind(command), CommandTally()).record(seconds, exit_status == 0)

    def record_upload(self, size: int, seconds: float) -> None:
        self.uploads += 1
        self.upload_bytes += size
        self.upload_seconds += seconds


def display(command: str) -> str:
    """A command as shown in errors and logs (bounded)."""
    one_line = " ".join(command.split())
    return one_line if len(one_line) <= MAX_DISPLAY else one_line[: MAX_DISPLAY - 1] + "…"


class _HostKeyCheck:
    """Decides on the server's host key when known_hosts has no match for it (asyncssh asks the client)."""

    def __init__(self, target: SshTarget, credentials: SshCredentials, pinned: str) -> None:
        self.target = target
        self.tofu = credentials.trust_on_first_use and not credentials.known_hosts.strip()
        self.has_known_hosts = bool(credentials.known_hosts.strip())
        self.pinned = pinned
        self.presented = ""
        self.presented_line = ""
        self.accepted_on_first_use = False

    def __call__(self, key: asyncssh.SSHKey) -> bool:
        fingerprint = key.get_fingerprint("sha256")
        self.presented = fingerprint
        self.presented_line = (
            f"{self.target.known_hosts_name} {key.export_public_key('openssh').decode().strip()}"
        )
        if not self.tofu:
            return False
        if self.pinned:
            return fingerprint == self.pinned
        self.pinned = fingerprint
        self.accepted_on_first_use = True
        return True

    def failure(self, error: str) -> HostKeyMismatch:
        seen = f" presented {self.presented}" if self.presented else ""
        if self.tofu and self.pinned:
            why = f"host key changed: expected the pinned {self.pinned},{seen}"
        elif self.has_known_hosts:
            why = f"host key not in known_hosts for {self.target.known_hosts_name} (the node{seen})"
        else:
            why = f"known_hosts is empty and hostKeyPolicy is Verify (the node{seen})"
        return HostKeyMismatch(
            f"refusing {self.target}: {why}; connection not trusted ({error})",
            node=self.target.node,
        )


class _BatchingTransport(asyncio.Transport):
    """The TCP transport under one SSH connection, sending the writes of one event-loop iteration as one.

    asyncssh hands every SSH packet (and an SSH_MSG_IGNORE before each) to its transport separately, and an asyncio
    socket transport sends each write at once: streaming 512 MiB took ~35 000 send() calls of 16-32 KiB, each
    waking the node's sshd for a small read — most of the client's CPU on a fast link. Batched, the packets that
    one window adjustment lets out leave in one send. Data is only delayed to the end of the current iteration.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending and not self._transport.is_closing():
            data = b"".join(self._pending)
            self._pending.clear()
            self._transport.write(data)
        self._pending.clear()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()


class _BatchingRelay(asyncio.Protocol):
    """Sits between the socket and asyncssh's connection: gives the connection a `_BatchingTransport`."""

    def __init__(self, inner: asyncio.Protocol) -> None:
        self._inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._inner.connection_made(_BatchingTransport(transport, asyncio.get_running_loop()))

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class _BatchingConnector:
    """asyncssh's `tunnel` hook (an object with `create_connection`): a plain TCP connection whose writes are
    batched (`_BatchingTransport`)."""

    async def create_connection(
        self, session_factory: Callable[[], asyncio.Protocol], remote_host: str, remote_port: int
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        inner = session_factory()
        transport, _ = await asyncio.get_running_loop().create_connection(
            lambda: _BatchingRelay(inner), remote_host, remote_port
        )
        return transport, inner

    def close(self) -> None:
        """Nothing to close: the TCP connection closes with the SSH connection."""

    async def wait_closed(self) -> None:
        """Nothing to wait for (see `close`)."""


class _Client(asyncssh.SSHClient):
    def __init__(self, check: _HostKeyCheck, on_lost: Callable[[Exception | None], None]) -> None:
        self._check = check
        self._on_lost = on_lost

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        return self._check(key)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)


@dataclass(eq=False)
class _Connection:
    ssh: Any  # asyncssh.SSHClientConnection
    load: int = 0
    alive: bool = True
    opened: float = field(default_factory=time.monotonic)


class SshPool:
    """Sessions to one node. Create once per ProxmoxNode (see `SshPoolRegistry`), close on shutdown."""

    def __init__(
        self, target: SshTarget, credentials: SshCredentials, settings: PoolSettings | None = None
    ) -> None:
        self.target = target
        self.settings = settings or PoolSettings()
        if self.settings.max_sessions < 1 or self.settings.sessions_per_connection < 1:
            raise ValueError("max_sessions and sessions_per_connection must be at least 1")
        self._credentials = credentials
        self._key: Any = None  # imported lazily, so a bad key surfaces as AuthenticationFailed on first use
        self._known_hosts: Any = None
        self._check = _HostKeyCheck(target, credentials, credentials.pinned_fingerprint)
        self._sem = asyncio.Semaphore(self.settings.max_sessions)
        self._lock = asyncio.Lock()
        self._conns: list[_Connection] = []
        self._failures = 0
        self._retry_at = 0.0
        self._closed = False
        self.stats = PoolStats()

    # --- public state ------------------------------------------------------------------------------------------

    @property
    def host_key_fingerprint(self) -> str:
        """SHA256 fingerprint of the host key this pool accepted (empty before the first connection)."""
        return self._check.pinned or self._check.presented

    @property
    def trusted_on_first_use(self) -> bool:
        """True when the host key was accepted by trust-on-first-use (record `host_key_fingerprint`)."""
        return self._check.accepted_on_first_use

    @property
    def accepted_known_hosts_line(self) -> str:
        """The known_hosts line of the accepted key (to persist after trust-on-first-use)."""
        return self._check.presented_line if self._check.pinned else ""

    @property
    def closed(self) -> bool:
        return self._closed

    # --- connections ---------------------------------------------------------------------------------------------

    def _import_credentials(self) -> None:
        if self._key is not None:
            return
        try:
            self._key = asyncssh.import_private_key(self._credentials.private_key)
        except (asyncssh.KeyImportError, ValueError) as exc:
            # The exception text never contains key material.
            raise AuthenticationFailed(
                f"cannot use the private key from the Secret ({type(exc).__name__}: {exc})",
                node=self.target.node,
            ) from None
        try:
            self._known_hosts = asyncssh.import_known_hosts(self._credentials.known_hosts)
        except (ValueError, asyncssh.KeyImportError) as exc:
            raise HostKeyMismatch(
                f"known_hosts in the Secret is not valid: {exc}", node=self.target.node
            ) from None

    async def _connect(self) -> _Connection:
        self._import_credentials()
        holder: list[_Connection] = []

        def on_lost(exc: Exception | None) -> None:
            if holder and holder[0].alive:
                holder[0].alive = False
                self.stats.connections_lost += 1
                log.info("ssh %s: connection lost (%s)", self.target, exc or "closed")

        s = self.settings
        try:
            ssh, _ = await asyncio.wait_for(
                asyncssh.create_connection(
                    lambda: _Client(self._check, on_lost),
                    self.target.host,
                    self.target.port,
                    username=self.target.user,
                    known_hosts=self._known_hosts,
                    client_keys=[self._key],
                    agent_path=None,
                    agent_identities=None,
                    agent_forwarding=False,
                    password=None,
                    kbdint_auth=False,
                    gss_auth=False,
                    host_based_auth=False,
                    preferred_auth="publickey",
                    encryption_algs=PREFERRED_CIPHERS,
                    tunnel=_BatchingConnector(),
                    config=None,
                    x509_trusted_certs=None,
                    x509_trusted_cert_paths=None,
                    keepalive_interval=s.keepalive_interval,
                    keepalive_count_max=s.keepalive_count_max,
                    login_timeout=s.connect_timeout,
                ),
                timeout=s.connect_timeout,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise self._check.failure(str(exc)) from None
        except asyncssh.PermissionDenied as exc:
            raise AuthenticationFailed(
                f"{self.target} refused the client key: {exc.reason}", node=self.target.node
            ) from None
        except (TimeoutError, asyncssh.Error, OSError) as exc:
            reason = "connect timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            raise NodeUnreachable(
                f"cannot connect to {self.target}: {reason}", node=self.target.node
            ) from None
        conn = _Connection(ssh=ssh)
        holder.append(conn)
        server_key = ssh.get_server_host_key()
        if server_key is not None:
            self._check.presented = server_key.get_fingerprint("sha256")
        self.stats.connections_opened += 1
        log.debug("ssh %s: connected (host key %s)", self.target, self.host_key_fingerprint)
        return conn

    async def _acquire_connection(self) -> _Connection:
        async with self._lock:
            if self._closed:
                raise PoolClosed(f"the SSH pool of {self.target} is closed", node=self.target.node)
            self._conns = [c for c in self._conns if c.alive]
            for conn in self._conns:
                if conn.load < self.settings.sessions_per_connection:
                    conn.load += 1
                    return conn
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                conn = await self._connect()
            except (NodeUnreachable, AuthenticationFailed, HostKeyMismatch):
                self._failures += 1
                self.stats.connect_failures += 1
                delay = min(
                    self.settings.reconnect_max, self.settings.reconnect_initial * 2 ** (self._failures - 1)
                )
                self._retry_at = time.monotonic() + delay * random.uniform(0.8, 1.2)  # noqa: S311
                raise
            self._failures = 0
            self._retry_at = 0.0
            self._conns.append(conn)
            conn.load += 1
            return conn

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[_Connection]:
        async with self._sem:
            conn = await self._acquire_connection()
            self.stats.active += 1
            self.stats.peak_active = max(self.stats.peak_active, self.stats.active)
            try:
                yield conn
            finally:
                conn.load -= 1
                self.stats.active -= 1

    def _drop(self, conn: _Connection) -> None:
        if conn.alive:
            conn.alive = False
            self.stats.connections_lost += 1
        conn.ssh.close()

    # --- commands ------------------------------------------------------------------------------------------------

    def _wrap(self, command: str, timeout: float, *, lifeline: bool) -> str:
        """The command line sent to the node.

        The command runs under coreutils `timeout` (in `sh -c`), so the node kills it at the deadline even if the
        connection is gone. With `lifeline` (no stdin data to send) the session's stdin is kept open and watched:
        when it reaches EOF — the client closed the channel (cancelled) or the connection died — the command is
        sent SIGTERM (`timeout` passes it on to the command's process group). SSH "signal" requests alone cannot
        do this: sshd refuses them for forced commands.
        """
        inner = f"timeout -k {self.settings.kill_grace:g}s {timeout:g}s sh -c {shlex.quote(command)}"
        if not lifeline:
            return inner
        return (
            f"exec 3<&0; {inner} </dev/null 3<&- & p=$!; "
            '( while read -r _; do :; done <&3; kill -TERM "$p" ) >/dev/null 2>&1 & w=$!; '
            'exec 3<&-; wait "$p"; rc=$?; kill "$w" 2>/dev/null; exit "$rc"'
        )

    async def run(
        self,
        command: str | Sequence[str],
        *,
        timeout_s: float | None = None,
        stdin: bytes | None = None,
        interruptible: bool = True,
    ) -> CommandResult:
        """Run `command` (a shell string, or an argv list that is quoted with `shell_join`) on the node.

        `interruptible` (reads): the remote command is ended as soon as the channel closes (cancelled, dropped).
        Otherwise (changes, or when `stdin` data is sent) it runs to completion or to its timeout on the node: a
        half-done `qm create` is worse than one that finishes while nobody listens.
        """

        async def feed(process: Any) -> None:
            if stdin is not None:
                process.stdin.write(stdin)
            if stdin is not None or not interruptible:
                process.stdin.write_eof()

        return await self._execute(command, timeout_s, feed, lifeline=interruptible and stdin is None)

    async def run_with_file(
        self, command: str, source: Path, *, timeout_s: float, chunk_size: int = STREAM_CHUNK
    ) -> CommandResult:
        """Run the shell command `command` on the node with the local file `source` streamed to its stdin.

        The file is read in `chunk_size` pieces (in a worker thread, the next piece while the last one is sent) and
        written to the session's channel as SSH's flow control allows, then EOF. There is no lifeline (stdin carries
        the data): when the call is cancelled or the connection drops, the remote command reads a short stream and
        must treat that as a failure (see `proxnix.proxmox.image_cache.receive_script`). If the remote command
        exits before reading everything, the rest is not sent and its result is returned. ImageError when `source`
        cannot be read (the channel is closed first).
        """

        async def read(f: BinaryIO) -> bytes:
            try:
                return await asyncio.to_thread(f.read, chunk_size)
            except OSError as exc:
                raise ImageError(f"cannot read {source}: {exc.strerror or exc}") from None

        async def feed(process: Any) -> None:
            try:
                f = source.open("rb")
            except OSError as exc:
                raise ImageError(f"cannot read {source}: {exc.strerror or exc}") from None
            with f:
                chunk = await read(f)
                while chunk:
                    ahead = asyncio.ensure_future(read(f))
                    try:
                        process.stdin.write(chunk)
                        await process.stdin.drain()
                    except BrokenPipeError:  # the command stopped reading: its exit status tells why
                        await asyncio.gather(ahead, return_exceptions=True)
                        return
                    except BaseException:
                        await asyncio.gather(ahead, return_exceptions=True)
                        raise
                    chunk = await ahead
            process.stdin.write_eof()

        return await self._execute(command, timeout_s, feed, lifeline=False)

    async def _execute(
        self,
        command: str | Sequence[str],
        timeout_s: float | None,
        feed: Callable[[Any], Awaitable[None]],
        *,
        lifeline: bool,
    ) -> CommandResult:
        """Open a session, start the wrapped command, `feed` its stdin, collect its output and exit status."""
        text = command if isinstance(command, str) else shell_join(command)
        shown = display(text)
        limit = timeout_s if timeout_s is not None else self.settings.command_timeout
        if limit <= 0:
            raise ValueError("timeout_s must be positive")
        async with self._session() as conn:
            self.stats.commands += 1
            started = time.monotonic()
            try:
                process = await conn.ssh.create_process(
                    self._wrap(text, limit, lifeline=lifeline),
                    encoding=None,
                    stdin=asyncssh.PIPE,
                )
            except (asyncssh.Error, OSError) as exc:
                if not isinstance(
                    exc, asyncssh.ChannelOpenError
                ):  # a refused channel leaves the connection up
                    self._drop(conn)
                raise ConnectionLost(
                    f"could not open a session on {self.target}: {exc}", ambiguous=False, command=shown,
                    node=self.target.node,
                ) from None  # fmt: skip
            try:
                async with asyncio.timeout(limit + self.settings.kill_grace + 5.0):
                    await feed(process)
                    stdout, stderr = await process.communicate()
            except asyncio.CancelledError:
                # The caller gave up (e.g. a handler was cancelled): end the remote command too.
                with contextlib.suppress(Exception):
                    process.kill()
                process.close()
                raise
            except TimeoutError:
                with contextlib.suppress(Exception):
                    process.kill()
                process.close()
                raise CommandTimeout(
                    f"no answer within {limit:g} s; the session was closed",
                    command=shown,
                    node=self.target.node,
                ) from None
            except ImageError:  # the local file being streamed could not be read
                process.close()
                raise
            except (asyncssh.Error, OSError, EOFError) as exc:
                self._drop(conn)
                raise ConnectionLost(
                    f"connection to {self.target} lost while running the command: {exc}",
                    command=shown,
                    node=self.target.node,
                ) from None
            duration = time.monotonic() - started
            status = process.exit_status
            if status is None:
                if process.exit_signal is None:
                    self._drop(conn)
                    raise ConnectionLost(
                        f"the session on {self.target} ended without an exit status (connection lost?)",
                        command=shown,
                        node=self.target.node,
                    )
                status = KILLED_EXIT  # killed by a signal on the node
        out = bytes(stdout or b"")
        err = bytes(stderr or b"").decode("utf-8", "replace")
        if status in (TIMEOUT_EXIT, KILLED_EXIT) and duration >= limit * 0.95:
            raise CommandTimeout(
                f"timed out after {limit:g} s; the remote process was killed",
                command=shown,
                node=self.target.node,
                exit_status=status,
                stderr=err,
            )
        self.stats.record_command(text, duration, status)
        log.debug("ssh %s: %s -> %s in %.3f s", self.target, shown, status, duration)
        return CommandResult(
            command=shown,
            exit_status=status,
            stdout=out.decode("utf-8", "replace"),
            stderr=err,
            duration=duration,
            stdout_bytes=out,
        )

    async def check(self) -> str:
        """Connect (or reuse a connection) and return the accepted host key fingerprint."""
        async with self._session():
            return self.host_key_fingerprint

    async def drop_connections(self) -> None:
        """Close the current connections (a hung one included); the pool stays usable and connects again."""
        async with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            self._drop(conn)

    async def close(self) -> None:
        """Close every connection (in-flight commands fail with ConnectionLost). Idempotent."""
        async with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.alive = False
            conn.ssh.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ssh.wait_closed(), self.settings.close_timeout)

    async def __aenter__(self) -> SshPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SshPoolRegistry:
    """One pool per node, replaced when the node's target, credentials or settings change; for the controllers'
    kopf memo. `close()` on operator shutdown."""

    def __init__(self) -> None:
        self._pools: dict[str, tuple[tuple[object, ...], SshPool]] = {}
        self._lock = asyncio.Lock()

    async def get(
        self,
        key: str,
        target: SshTarget,
        credentials: SshCredentials,
        settings: PoolSettings | None = None,
    ) -> SshPool:
        identity = (
            target,
            credentials.private_key,
            credentials.known_hosts,
            credentials.trust_on_first_use,
            credentials.pinned_fingerprint,
            settings,
        )
        async with self._lock:
            current = self._pools.get(key)
            if current is not None and current[0] == identity and not current[1].closed:
                return current[1]
            pool = SshPool(target, credentials, settings)
            self._pools[key] = (identity, pool)
        if current is not None:
            await current[1].close()
        return pool

    async def discard(self, key: str) -> None:
        async with self._lock:
            current = self._pools.pop(key, None)
        if current is not None:
            await current[1].close()

    async def close(self) -> None:
        async with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for _, pool in pools), return_exceptions=True)
