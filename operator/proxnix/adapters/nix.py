"""nix (the only place it is run): evaluate a flake's `proxnix` output, probe and build the used images, keep them
alive with GC roots per GitRepo, hash each image once per store path.

- Evaluations have a timeout and an output cap; a process that exceeds either is killed (with its process group).
- Builds: one `nix build` per commit for exactly the used images, bounded across GitRepos by one semaphore (the
  `Nix` object is shared). The whole log (stderr with `-L`) is kept on disk per GitRepo and revision; a failure's
  message carries its last lines.
- GC roots: `<state>/gcroots/<namespace>/<name>/<store path basename>` symlinks registered with `nix-store
  --add-root`; after a successful apply the caller drops the roots of images no longer used.
- sha256: store paths are immutable, so each image file is hashed once per process (and the hash reused).
The machine's nix configuration (nix.conf, NIX_CONFIG, e.g. `builders` for remote builders) is passed through
untouched: the environment of the operator is the environment of nix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

from proxnix.adapters.git import RepoKey
from proxnix.adapters.hashing import file_sha256
from proxnix.sources.flake import nix_commands as commands
from proxnix.sources.flake.nix_commands import FlakeRef, NixVersion
from proxnix.sources.flake.nix_outputs import (
    ImageProbe,
    NixOutputError,
    check_built,
    last_lines,
    parse_build,
    parse_probe,
    qcow2_in_listing,
)

MiB = 1 << 20


class NixErrorKind(StrEnum):
    """Why a nix step failed (a condition reason)."""

    EVAL_FAILED = "EvaluationFailed"
    BUILD_FAILED = "BuildFailed"
    TIMEOUT = "NixTimeout"
    OUTPUT_TOO_LARGE = "NixOutputTooLarge"
    NIX_MISSING = "NixNotFound"
    BAD_OUTPUT = "NixOutputUnusable"


class NixError(Exception):
    """A nix step failed; `message` is for a condition (last lines of nix's errors), `log_path` holds a build's log."""

    def __init__(self, kind: NixErrorKind, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.log_path = log_path


@dataclass(frozen=True)
class BuiltImage:
    """A built image: the configuration it came from, its store path, the qcow2 file and its sha256."""

    image_type: str
    store_path: str
    file: str
    sha256: str


@dataclass(frozen=True)
class _Done:
    returncode: int
    stdout: bytes
    stderr: bytes


@dataclass
class BuildStats:
    """What `nix build` cost so far (the operator's /metrics reads it at scrape time): builds run (skipped ones, whose
    images were already rooted, are not counted), failed, their seconds, and how many run now."""

    builds: int = 0
    failures: int = 0
    seconds: float = 0.0
    running: int = 0


class Nix:
    """Runs nix for every GitRepo of one operator process."""

    def __init__(
        self,
        state_dir: Path,
        *,
        eval_timeout: float = 300.0,
        build_timeout: float = 6 * 3600.0,
        max_output: int = 16 * MiB,
        max_concurrent_builds: int = 2,
        keep_logs: int = 10,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.eval_timeout = eval_timeout
        self.build_timeout = build_timeout
        self.max_output = max_output
        self.env = dict(env) if env is not None else None
        self.keep_logs = keep_logs
        self._builds = asyncio.Semaphore(max_concurrent_builds)
        self.stats = BuildStats()
        self._hashes: dict[str, str] = {}
        self._version: NixVersion | None = None

    # --- commands ----------------------------------------------------------------------------------

    async def version(self) -> NixVersion:
        """The installed nix's version (feature detection); refused below the minimum."""
        if self._version is None:
            done = await self._run(commands.version_argv(), limit=30)
            if done.returncode != 0:
                raise NixError(NixErrorKind.NIX_MISSING, _text(done.stderr) or "nix --version failed")
            version = commands.parse_version(_text(done.stdout))
            if version < commands.MINIMUM_VERSION:
                raise NixError(
                    NixErrorKind.NIX_MISSING, f"nix {version} is too old; {commands.MINIMUM_VERSION}+ needed"
                )
            self._version = version
        return self._version

    async def evaluate(self, flake: FlakeRef) -> str:
        """`nix eval --json <flake>#proxnix`: the JSON text (parse it with proxnix.sources.flake.vms)."""
        done = await self._run(commands.eval_argv(flake), limit=self.eval_timeout, what="nix eval")
        if done.returncode != 0:
            raise NixError(NixErrorKind.EVAL_FAILED, _errors(done.stderr))
        return _text(done.stdout)

    async def probe(self, flake: FlakeRef, image_types: Sequence[str]) -> dict[str, ImageProbe]:
        """Where each used image type's qcow2 is and its output path (types without one are left out)."""
        if not image_types:
            return {}
        argv = commands.probe_argv(flake, image_types)
        done = await self._run(argv, limit=self.eval_timeout, what="nix eval (image probe)")
        if done.returncode != 0:
            raise NixError(NixErrorKind.EVAL_FAILED, _errors(done.stderr))
        try:
            return parse_probe(done.stdout, image_types)
        except NixOutputError as exc:
            raise NixError(NixErrorKind.BAD_OUTPUT, str(exc)) from None

    async def build(
        self,
        key: RepoKey,
        revision: str,
        flake: FlakeRef,
        probes: Sequence[ImageProbe],
        known_sha256: Mapping[str, str] | None = None,
    ) -> dict[str, BuiltImage]:
        """Build the probed images in one nix invocation (waiting for a build slot); their files and sha256s.

        Images whose store paths this GitRepo already keeps alive are not built again (0 builds for a commit that
        changes no image). `known_sha256` (file → sha256, e.g. from the GitRepo's status) saves re-hashing after a
        restart.
        """
        for file, sha in (known_sha256 or {}).items():
            self._hashes.setdefault(file, sha)
        rooted = set(self.rooted(key))
        if all(p.out_path in rooted for p in probes):
            return {p.image_type: await self._built(p) for p in probes}
        log_path = self.log_path(key, revision)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = commands.build_argv(flake, [(p.image_type, p.attr) for p in probes])
        async with self._builds:
            self.stats.running += 1
            started = time.monotonic()
            try:
                with log_path.open("wb") as log:
                    done = await self._run(argv, limit=self.build_timeout, what="nix build", stderr_to=log)
            except BaseException:
                self.stats.failures += 1
                raise
            finally:
                self.stats.running -= 1
                self.stats.builds += 1
                self.stats.seconds += time.monotonic() - started
        self._prune_logs(log_path.parent)
        if done.returncode != 0:
            self.stats.failures += 1
            tail = last_lines(log_path.read_text(errors="replace"))
            raise NixError(NixErrorKind.BUILD_FAILED, tail or "nix build failed", log_path)
        try:
            check_built(probes, parse_build(done.stdout))
        except NixOutputError as exc:
            raise NixError(NixErrorKind.BAD_OUTPUT, str(exc), log_path) from None
        return {p.image_type: await self._built(p) for p in probes}

    def log_path(self, key: RepoKey, revision: str) -> Path:
        """Where the build log of a GitRepo's revision is kept."""
        return self.state_dir / "logs" / key.namespace / key.name / f"{revision}.log"

    def _prune_logs(self, folder: Path) -> None:
        """Keep the newest `keep_logs` build logs of a GitRepo."""
        logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in logs[self.keep_logs :]:
            old.unlink(missing_ok=True)

    # --- GC roots ---------------------------------------------------------------------------------

    def roots_dir(self, key: RepoKey) -> Path:
        return self.state_dir / "gcroots" / key.namespace / key.name

    async def add_roots(self, key: RepoKey, store_paths: Sequence[str]) -> None:
        """Keep these store paths alive (nix-store --add-root) for the GitRepo."""
        folder = self.roots_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        for store_path in store_paths:
            root = folder / Path(store_path).name
            done = await self._run(commands.add_root_argv(str(root), store_path), limit=self.eval_timeout)
            if done.returncode != 0:
                raise NixError(
                    NixErrorKind.BUILD_FAILED,
                    f"cannot add a GC root for {store_path}: {_errors(done.stderr)}",
                )

    def drop_roots(self, key: RepoKey, keep: Sequence[str] = ()) -> list[str]:
        """Drop the GitRepo's GC roots except those of `keep` (store paths); returns the dropped store paths."""
        folder = self.roots_dir(key)
        wanted = {Path(p).name for p in keep}
        dropped = []
        for root in sorted(folder.glob("*")) if folder.exists() else []:
            if root.name not in wanted:
                dropped.append(os.readlink(root) if root.is_symlink() else str(root))
                root.unlink()
        return dropped

    def rooted(self, key: RepoKey) -> list[str]:
        """The store paths the GitRepo keeps alive."""
        folder = self.roots_dir(key)
        return sorted(os.readlink(r) for r in folder.glob("*") if r.is_symlink()) if folder.exists() else []

    # --- internals ----------------------------------------------------------------------------------

    async def _built(self, probe: ImageProbe) -> BuiltImage:
        return await asyncio.to_thread(self._locate_and_hash, probe)

    def _locate_and_hash(self, probe: ImageProbe) -> BuiltImage:
        file = probe.image_file
        if not os.path.isfile(file):
            try:
                file = qcow2_in_listing(probe.out_path, os.listdir(probe.out_path))
            except (NixOutputError, OSError) as exc:
                raise NixError(NixErrorKind.BAD_OUTPUT, f"{probe.image_type}: {exc}") from None
        sha = self._hashes.get(file)
        if sha is None:
            sha = file_sha256(Path(file)).sha256
            self._hashes[file] = sha
        return BuiltImage(image_type=probe.image_type, store_path=probe.out_path, file=file, sha256=sha)

    async def _run(
        self, argv: Sequence[str], *, limit: float, what: str = "nix", stderr_to: IO[bytes] | None = None
    ) -> _Done:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr_to if stderr_to is not None else asyncio.subprocess.PIPE,
                env=self.env,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise NixError(
                NixErrorKind.NIX_MISSING, f"{argv[0]} is not on PATH (install nix: hack/setup.sh)"
            ) from None
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(limit):
                stdout_task = asyncio.ensure_future(_read_capped(proc.stdout, self.max_output))
                stderr_task = (
                    asyncio.ensure_future(_read_capped(proc.stderr, self.max_output))
                    if proc.stderr is not None
                    else None
                )
                stdout = await stdout_task
                stderr = await stderr_task if stderr_task is not None else b""
                returncode = await proc.wait()
        except TimeoutError:
            await _stop(proc)
            raise NixError(NixErrorKind.TIMEOUT, f"{what} did not finish within {limit:g} s") from None
        except _TooLarge:
            await _stop(proc)
            raise NixError(
                NixErrorKind.OUTPUT_TOO_LARGE, f"{what} printed more than {self.max_output // MiB} MiB"
            ) from None
        except BaseException:
            await asyncio.shield(_stop(proc))
            raise
        return _Done(returncode, stdout, stderr)


class _TooLarge(Exception):
    pass


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _stop(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    """Interrupt nix (it stops its builders, which run in sessions of their own), then kill what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
            return
        except TimeoutError:
            continue


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _errors(stderr: bytes) -> str:
    """nix's error lines for a condition message (warnings dropped), at most the last 20 lines."""
    lines = [line for line in _text(stderr).splitlines() if not line.startswith("warning:")]
    return last_lines("\n".join(lines)) or "nix failed without a message"
