"""What every qm/pvesh invocation does around its command: read the node's settings, sleep the configured
latency, apply faults (hang, fail), turn errors into stderr + exit code, and append to the call log."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from pvesim import calllog, faults
from pvesim.context import Ctx
from pvesim.errors import PveError
from pvesim.layout import Layout


class _Killed(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Killed(signum)


def run(tool: str, argv: list[str], dispatch: Callable[[Ctx, list[str]], int]) -> int:
    started = time.time()
    layout, node = Layout.from_env()
    full_argv = [tool, *argv]
    rc: int | None = 255
    fault_names: list[str] = []
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _on_signal)
    try:
        ctx = Ctx(layout, node)
        if ctx.settings.latency > 0:
            time.sleep(ctx.settings.latency)
        ctx.fired = faults.fire(layout, node, full_argv)
        fault_names = [rule.action for rule in ctx.fired]
        for rule in ctx.fired:
            if rule.action == "hang":
                time.sleep(float(rule.arg) if rule.arg is not None else 3600.0)
        failing = ctx.fault("fail")
        if failing is not None:
            sys.stderr.write((failing.arg if failing.arg is not None else "simulated failure") + "\n")
            rc = failing.rc
        else:
            rc = dispatch(ctx, argv)
    except PveError as exc:
        sys.stdout.flush()
        sys.stderr.write(exc.render())
        rc = exc.rc
    except _Killed as killed:
        rc = None
        fault_names.append(f"signal {killed.signum}")
    except BrokenPipeError:
        rc = 255
    except Exception:  # a simulator bug: make it loud
        import traceback

        sys.stdout.flush()
        sys.stderr.write("pvesim internal error:\n" + traceback.format_exc())
        rc = 255
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BrokenPipeError, ValueError):
                stream.flush()
        calllog.append(
            layout,
            node,
            {
                "ts": round(started, 6),
                "node": node,
                "tool": tool,
                "argv": full_argv,
                "duration": round(time.time() - started, 6),
                "rc": rc,
                "fault": ",".join(fault_names) or None,
            },
        )
    return 255 if rc is None else rc
