"""What the operator did to each VM on the simulated nodes, read from pvesim's call logs (`pvesim.calllog`): the
writes per VM since a moment, to tell "touched once" from "touched twice", and whether a qm command is running on
this machine right now (to kill the operator in the middle of one).

A *write* is one effect of a completed (`rc == 0`) qm call on one VM's definition or power state:
`("create",)`, `("destroy",)`, `("start",)`, `("set", OPTION)` for every option a `qm set` writes or deletes (the
`--digest`/`--skiplock` guards are not options), `("import", DISK)`, `("resize", DISK)`. A VM is *touched twice*
when any of its writes appears more than once: created, destroyed, started or reimaged twice, or one option written
twice (the same change made again). Reads (`qm config`, `list`, `status`, `pending`, guest agent calls) and `stop`
(idempotent, and a reimage stops before destroying) are not writes; a call killed before it ran (pvesim logs
`rc` None) or refused (`rc` != 0) changed nothing.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from pvesim import calllog

Write = tuple[str, ...]
_NOT_OPTIONS = frozenset({"digest", "skiplock", "force"})


def writes_of(argv: tuple[str, ...]) -> tuple[int, list[Write]] | None:
    """The VMID a qm call acts on and its writes (None: not a write to one VM)."""
    if len(argv) < 3 or argv[0] != "qm":
        return None
    verb, rest = argv[1], argv[2:]
    if verb == "disk" and len(rest) >= 3 and rest[0] in ("import", "resize") and rest[1].isdigit():
        return int(rest[1]), [(rest[0], rest[2] if rest[0] == "resize" else rest[3] if len(rest) > 3 else "")]
    if verb == "importdisk" and rest[0].isdigit():
        return int(rest[0]), [("import", rest[2] if len(rest) > 2 else "")]
    if not rest[0].isdigit():
        return None
    vmid = int(rest[0])
    if verb in ("create", "destroy", "start"):
        return vmid, [(verb,)]
    if verb == "set":
        options: list[Write] = []
        args = list(rest[1:])
        for i, arg in enumerate(args):
            if not arg.startswith("--"):
                continue
            name = arg[2:]
            if name == "delete" and i + 1 < len(args):
                options += [("set", deleted) for deleted in args[i + 1].split(",") if deleted]
            elif name not in _NOT_OPTIONS:
                options.append(("set", name))
        return vmid, options
    return None


def writes_since(sim_dir: Path, since: float) -> dict[tuple[str, int], Counter[Write]]:
    """(node, VMID) → how often each write was made by a completed qm call that started at `since` or later."""
    found: dict[tuple[str, int], Counter[Write]] = {}
    for call in calllog.read(sim_dir):
        if call.ts < since or call.rc != 0:
            continue
        parsed = writes_of(call.argv)
        if parsed is None:
            continue
        vmid, writes = parsed
        found.setdefault((call.node, vmid), Counter()).update(writes)
    return found


def touched_twice(writes: dict[tuple[str, int], Counter[Write]]) -> dict[tuple[str, int], list[Write]]:
    """The VMs with a write made more than once, and those writes."""
    twice = {vm: sorted(w for w, n in counts.items() if n > 1) for vm, counts in writes.items()}
    return {vm: ws for vm, ws in twice.items() if ws}


def running_qm(*words: str) -> bool:
    """Whether a simulated `qm <words...>` process is running on this machine (the node's side of a call)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        for i, arg in enumerate(argv):
            if arg.endswith("/bin/qm") and tuple(argv[i + 1 : i + 1 + len(words)]) == words:
                return True
    return False
