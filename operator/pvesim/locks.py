"""flock-based locks with PVE's timeout behaviour (`PVE::Tools::lock_file_full`).

When the lock is busy: `trying to acquire lock...` (no newline) goes to the log stream; on success ` OK`
follows; after the timeout the error `can't lock file '<path>' - got timeout` is raised. The timeout is a real
SIGALRM interrupting a blocking flock, as in Perl's `run_with_timeout`.
"""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from pvesim.errors import PveError


class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


def timeout_error(display: str) -> PveError:
    return PveError(f"can't lock file '{display}' - got timeout")


@contextmanager
def flock(path: Path, display: str, timeout: float, log: TextIO) -> Iterator[None]:
    """Hold an exclusive flock on `path`; `display` is the path named in messages (a real node's path)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.write("trying to acquire lock...")
            log.flush()
            got = False
            previous = signal.signal(signal.SIGALRM, _on_alarm)
            try:
                signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
                fcntl.flock(fd, fcntl.LOCK_EX)
                got = True
            except _Timeout:
                got = False
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            if not got:
                raise timeout_error(display) from None
            log.write(" OK\n")
            log.flush()
        yield
    finally:
        os.close(fd)


@contextmanager
def plain_flock(path: Path) -> Iterator[None]:
    """A short internal critical section (no messages, no timeout): the cluster file system's atomicity."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
