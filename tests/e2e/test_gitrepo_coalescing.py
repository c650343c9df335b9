"""A burst of pushes coalesces: the newest commit is the one applied, the commits in between are skipped (not
queued one build each). Real git server and hook → webhook sidecar → operator, real nix (each commit changes the
web image, so every reconcile that evaluates a new commit runs a real `nix build`), the real control plane, pvesim.

A burst is pushes closer together than the reconciler's quiet period (`BURST_QUIET_S`): a reconcile that finds newer
pushes marked after its fetch waits for them to pause and fetches again (`proxnix.reconcile.gitrepo.bursts`), so a
burst costs one build, two when a run had already built a commit before the rest arrived. (20 real pushes,
each through SSH, git and the hook's signed delivery, take 7-17 s on the shared test machine, not 5.)
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
import urllib.request

import pytest

from proxnix.reconcile.gitrepo.bursts import QUIET_S as BURST_QUIET_S
from proxnix_testbed.sandbox import Sandbox
from tests.e2e.conftest import events
from tests.support.fleet import Fleet

pytestmark = pytest.mark.e2e

PUSHES = 20


def nix_builds_run(sb: Sandbox) -> int:
    """`proxnix_nix_builds_total` (ok + failed) on the operator's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{sb.metrics_port}/metrics", timeout=5) as rsp:
        text = rsp.read().decode()
    found = re.findall(r'^proxnix_nix_builds_total\{result="(?:ok|failed)"\} ([0-9.e+]+)$', text, re.M)
    assert found, "proxnix_nix_builds_total missing from /metrics"
    return round(sum(float(v) for v in found))


def test_a_burst_of_pushes_applies_the_last_commit_and_skips_the_others(fleet: Fleet) -> None:
    sb = fleet.sb
    fleet.reuse_ssh_connection(sb.dir)
    run = secrets.token_hex(4)  # labels never built before: every evaluated commit is a real build
    builds_before = nix_builds_run(sb)
    applied_before = {e["metadata"]["uid"] for e in events(sb, "fleet") if e["reason"] == "Applied"}
    start = time.monotonic()
    heads, pushed = [], [start]
    for i in range(PUSHES):
        heads.append(fleet.push(f"burst {i}", web=f"web-{run}-{i}"))
        pushed.append(time.monotonic())
    pushed_in = pushed[-1] - start
    gaps = [b - a for a, b in itertools.pairwise(pushed)]
    assert max(gaps) < BURST_QUIET_S, f"not a burst: pushes {max(gaps):.1f} s apart"

    repo = fleet.wait_ready(heads[-1], 120)
    settled_in = time.monotonic() - start
    builds = nix_builds_run(sb) - builds_before
    applied = [
        e["message"]
        for e in events(sb, "fleet")
        if e["reason"] == "Applied" and e["metadata"]["uid"] not in applied_before
    ]
    applied_heads = [h for h in heads if any(h[:12] in m for m in applied)]
    print(
        f"\nburst: {PUSHES} pushes in {pushed_in:.1f} s, Ready at the last after {settled_in:.1f} s, "
        f"{builds} nix builds, revisions applied: {[heads.index(h) + 1 for h in applied_heads]}"
    )
    assert repo["status"]["lastAppliedRevision"] == heads[-1]
    assert repo["status"]["lastPlan"]["reimaged"] == ["web01"]
    assert 1 <= builds <= 2
    assert applied_heads[-1] == heads[-1]
    assert len(applied_heads) <= builds
    web01 = sb.get("proxmoxvm", "web01")
    assert web01 is not None
    assert web01["status"]["imageSha256"] == web01["spec"]["image"]["sha256"]
