#!/usr/bin/env python3
"""Benchmark: `git push` → the VMs, through the GitRepo controller (issue 11), in the sandbox.

    .venv/bin/python hack/bench/gitrepo_push.py [--scenario memory|burst|unchanged] [--runs 5] [--latency 0.5]

Brings up its own sandbox (control plane, two pvesim nodes answering each qm/pvesh call after `--latency` s, the
operator, the webhook sidecar, the git server) with the test fleet (tests/support/fleet.py: web01 and web02 on pve1,
db01 on pve2), applies GitRepo `fleet` and waits until it is Ready (images built and on the nodes). Then:

- memory: `--runs` times web01's memory is changed and pushed; seconds from `git push` until `qm config 100` on
  pve1 shows it, split into →hook (git push → the sidecar's mark on the GitRepo, from a watch), → reconcile start
  (the GitRepo's Reconciling=Fetching), fetch, eval, build, apply (the operator's `proxnix_gitrepo_step_seconds`),
  and the VM reconcile on the node (ProxmoxVM patched, from a watch → `qm set --memory` done, from the node's call
  log).
- burst: 20 commits made first, then pushed one by one as fast as git goes (one SSH connection), each changing
  web01's memory; second variant: each also changes db's image label, so every commit needs a build → nix builds
  and evaluations, reconcile runs, image uploads, the commits fetched, the commit applied (must be the last).
- unchanged: a README change, then a memory change → nix builds, image uploads, reimages (the plan's `reimaged`,
  and no qm create/destroy/disk import in the nodes' call logs).

Must run as root (sshd). Reports, asserts nothing; exits 1 if a scenario did not reach its end state in time.
Last line:
    gitrepo push: memory <s> s (hook .. start .. fetch .. eval .. build .. apply .. node ..) | burst <s> s: <n>
    builds (memory only), newest | burst <s> s: <n> builds (each commit a new image), newest | unchanged: <n>
    builds, <n> uploads, <n> reimages
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT))

from kubernetes import client, config, watch  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from proxnix.api.meta import ANNOTATION_REVISION  # noqa: E402
from proxnix_testbed.sandbox import Sandbox, SandboxConfig, SandboxError, running_sandbox  # noqa: E402
from pvesim import calllog  # noqa: E402
from tests.support.flakes import DEFAULT_LABELS, write_labels  # noqa: E402
from tests.support.fleet import Fleet, open_fleet  # noqa: E402
from tests.support.observe import condition, node_config  # noqa: E402

STEPS = ("fetch", "eval", "build", "apply")
BURST = 20
REIMAGE = (("qm", "create"), ("qm", "destroy"), ("qm", "disk", "import"), ("qm", "importdisk"))
Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# --- what the operator says: /metrics -------------------------------------------------------------------------------


def scrape(sb: Sandbox) -> Metrics:
    with urllib.request.urlopen(f"http://127.0.0.1:{sb.metrics_port}/metrics", timeout=10) as rsp:
        text = rsp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(metrics: Metrics, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= set(ls))


@dataclass
class Delta:
    """What the operator counted between two scrapes."""

    before: Metrics
    after: Metrics

    def of(self, name: str, **labels: str) -> float:
        return total(self.after, name, **labels) - total(self.before, name, **labels)

    def step(self, step: str) -> tuple[int, float]:
        """Runs of a GitRepo step and their seconds."""
        count = self.of("proxnix_gitrepo_step_seconds_count", step=step)
        return int(count), self.of("proxnix_gitrepo_step_seconds_sum", step=step)

    @property
    def builds(self) -> int:
        return int(self.of("proxnix_nix_builds_total"))

    @property
    def uploads(self) -> int:
        return int(self.of("proxnix_image_uploads_total"))


# --- what the API server says: a watch on GitRepos and ProxmoxVMs ---------------------------------------------------


@dataclass
class Seen:
    at: float
    kind: str
    obj: dict[str, Any]


@dataclass
class Watcher:
    """Every GitRepo and ProxmoxVM event of the namespace, with the wall-clock time it arrived."""

    sb: Sandbox
    events: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    restarts: int = 0

    def start(self) -> None:
        api = client.CustomObjectsApi(config.new_client_from_config(str(self.sb.kubeconfig)))
        for plural in ("gitrepos", "proxmoxvms"):
            threading.Thread(target=self._watch, args=(api, plural), daemon=True).start()

    def _watch(self, api: client.CustomObjectsApi, plural: str) -> None:
        ns = self.sb.config.namespace
        while not self.stop.is_set():
            try:  # each (re)start lists the current objects first (ADDED): later than what they replay
                for event in watch.Watch().stream(
                    api.list_namespaced_custom_object,
                    "proxnix.io",
                    "v1alpha1",
                    ns,
                    plural,
                    timeout_seconds=60,
                ):
                    with self.lock:
                        self.events.append(Seen(time.time(), plural, event["object"]))
                    if self.stop.is_set():
                        return
            except Exception:  # a 504 "Too large resource version", a dropped stream: watch again
                self.restarts += 1
                time.sleep(0.1)

    def first(self, kind: str, after: float, pred: Callable[[dict[str, Any]], bool]) -> float | None:
        with self.lock:
            return next((e.at for e in self.events if e.kind == kind and e.at >= after and pred(e.obj)), None)


# --- the user's side ------------------------------------------------------------------------------------------------


def with_memory(vms: str, vm: str, mib: int) -> str:
    """vms.nix with `vm`'s memory_mb set to `mib`."""
    changed, n = re.subn(rf"(\b{vm} = \{{.*?memory_mb = )\d+", rf"\g<1>{mib}", vms, count=1, flags=re.DOTALL)
    if n != 1:
        raise SandboxError(f"no memory_mb for {vm} in vms.nix")
    return changed


def vms_text(fleet: Fleet) -> str:
    return (fleet.work.path / "vms.nix").read_text()


def reimage_calls(sb: Sandbox, since: float) -> list[str]:
    return [
        f"{c.node}: {c.command}"
        for c in calllog.read(sb.sim_dir)
        if c.ts >= since and (any(c.startswith(*words) for words in REIMAGE) or "import-from=" in c.command)
    ]


def web01_memory(sb: Sandbox) -> str | None:
    return (node_config(sb, "pve1", 100) or {}).get("memory")


def fmt(seconds: float | None) -> str:
    return "  n/a " if seconds is None else f"{seconds:6.2f}"


# --- scenarios ------------------------------------------------------------------------------------------------------


@dataclass
class Bench:
    sb: Sandbox
    fleet: Fleet
    watcher: Watcher
    timeout: float
    memory: int = 2048
    summary: dict[str, str] = field(default_factory=dict)

    def settle(self, head: str) -> float:
        """Wait until the GitRepo is Ready at `head` (returns when that was seen) and its reconciles have stopped
        (no run for 6 s)."""
        self.fleet.wait_ready(head, self.timeout)
        ready = time.time()
        last = scrape(self.sb)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 6:
            time.sleep(1)
            now = scrape(self.sb)
            if total(now, "proxnix_gitrepo_step_seconds_count") != total(
                last, "proxnix_gitrepo_step_seconds_count"
            ):
                quiet_since, last = time.monotonic(), now
        return ready

    def memory_run(self, mib: int) -> tuple[dict[str, float], str]:
        """Push web01 at `mib` MiB; the seconds of each part until pve1 has it, and the commit."""
        before = scrape(self.sb)
        t0 = time.time()
        head = self.fleet.push(f"web01: {mib} MiB", with_memory(vms_text(self.fleet), "web01", mib))
        t1 = time.time()
        self.sb.wait_for(lambda: web01_memory(self.sb) == str(mib), self.timeout, f"web01 at {mib} MiB")
        seen = time.time()
        delta = Delta(before, scrape(self.sb))
        marked = self.watcher.first(
            "gitrepos", t0, lambda o: o["metadata"].get("annotations", {}).get(ANNOTATION_REVISION) == head
        )
        started = self.watcher.first(
            "gitrepos", marked or t0, lambda o: condition(o, "Reconciling").get("reason") == "Fetching"
        )
        patched = self.watcher.first(
            "proxmoxvms", t0, lambda o: o["metadata"]["name"] == "web01" and o["spec"].get("memoryMiB") == mib
        )
        node_calls = [c for c in calllog.read(self.sb.sim_dir, "pve1") if c.ts >= (patched or t0)]
        qm_set = next(
            (c for c in node_calls if c.startswith("qm", "set", "100") and f"--memory {mib}" in c.command),
            None,
        )
        done = qm_set.ts + qm_set.duration if qm_set is not None else seen
        nan = float("nan")
        row = {
            "→hook": (marked - t0) if marked is not None else nan,
            "→start": (started - marked) if started is not None and marked is not None else nan,
            **{s: delta.step(s)[1] for s in STEPS},
            "node": (done - patched) if patched is not None else nan,
            "total": done - t0,
            "git": t1 - t0,
            "runs": float(delta.step("fetch")[0]),
            "node qm": float(sum(1 for c in node_calls if c.ts <= done)),
        }
        row["other"] = row["total"] - sum(row[c] for c in ("→hook", "→start", *STEPS, "node"))
        return row, head

    def memory_runs(self, runs: int) -> None:
        latency = self.sb.config.latency
        print(f"\n== memory: push → web01's memory on pve1 ({runs} runs; pvesim latency {latency} s)")
        cols = ("→hook", "→start", *STEPS, "node", "other", "total", "git", "runs", "node qm")
        print(" ".join(f"{c:>7}" for c in cols))
        rows: list[dict[str, float]] = []
        for _ in range(runs):
            self.memory += 256
            row, head = self.memory_run(self.memory)
            rows.append(row)
            print(
                " ".join(f"{row[c]:7.2f}" if c not in ("runs", "node qm") else f"{row[c]:7.0f}" for c in cols)
            )
            self.settle(head)
        mean = {c: sum(r[c] for r in rows) / len(rows) for c in cols}
        print(" ".join(f"{mean[c]:7.2f}" for c in cols), " (mean)")
        print(
            "  →hook: git push → the sidecar's mark on the GitRepo (ssh, receive-pack, post-receive hook, webhook);"
            " →start: mark → GitRepo Reconciling=Fetching (kopf);"
            " fetch..apply: the operator's proxnix_gitrepo_step_seconds (runs: reconciles counted in the window);"
            " node: ProxmoxVM patched → `qm set --memory` done on pve1 (node qm: qm calls on pve1 until then);"
            " other: the rest (checkout, status patches); git: the git push command (returns after the 202)"
        )
        self.summary["memory"] = (
            f"memory {mean['total']:.1f} s (hook {mean['→hook']:.2f} start {mean['→start']:.2f} "
            + " ".join(f"{s} {mean[s]:.2f}" for s in STEPS)
            + f" node {mean['node']:.1f})"
        )

    def burst_commits(self, image: bool) -> list[str]:
        """`BURST` commits, each changing web01's memory (and with `image` db's image label); not pushed yet."""
        tag = secrets.token_hex(3)
        heads = []
        for i in range(BURST):
            self.memory += 16
            (self.fleet.work.path / "vms.nix").write_text(
                with_memory(vms_text(self.fleet), "web01", self.memory)
            )
            if image:
                write_labels(self.fleet.work.path, {**DEFAULT_LABELS, "db": f"db-{tag}-{i}"})
            heads.append(self.fleet.work.commit(f"burst {i}: web01 {self.memory} MiB"))
        return heads

    def burst(self, image: bool) -> bool:
        variant = "memory + db image label: each commit needs a build" if image else "memory only"
        print(f"\n== burst: {BURST} pushes, each a commit changing web01's memory ({variant})")
        heads = self.burst_commits(image)
        last = heads[-1]
        before = scrape(self.sb)
        t0 = time.time()
        for head in heads:  # one push per commit, as fast as git goes (one SSH connection: ControlMaster)
            pushed = self.fleet.work.push(f"{head}:refs/heads/main")
            if "-> 202" not in pushed:
                raise SandboxError(f"the hook's webhook was not accepted: {pushed}")
        burst = time.time() - t0
        print(f"{BURST} pushes in {burst:.2f} s (the last: {last[:12]}, web01 {self.memory} MiB)")
        ok = True
        try:
            ready = self.settle(last) - t0
        except SandboxError as exc:
            print(f"not applied in time: {str(exc).splitlines()[0]}", file=sys.stderr)
            ok, ready = False, float("nan")
        delta = Delta(before, scrape(self.sb))
        applied = self.fleet.gitrepo()["status"].get("lastAppliedRevision", "")
        vm = (self.sb.get("proxmoxvm", "web01") or {}).get("spec", {})
        on_node = web01_memory(self.sb)
        fetched = sorted({heads.index(r) for r in self._revisions_fetched(t0) if r in heads})
        print(
            f"nix builds {delta.builds}, evaluations {delta.step('eval')[0]}, reconcile runs"
            f" {delta.step('fetch')[0]}, image uploads {delta.uploads}; commits fetched (of 0..{BURST - 1}): {fetched}"
        )
        newest = applied == last and vm.get("memoryMiB") == self.memory and on_node == str(self.memory)
        print(
            f"applied {applied[:12]} ({'the last commit' if applied == last else 'NOT the last commit'}),"
            f" ProxmoxVM web01 {vm.get('memoryMiB')} MiB, pve1 web01 {on_node} MiB;"
            f" GitRepo Ready at the last commit {ready:.1f} s after the first push"
        )
        key = "burst image" if image else "burst memory"
        label = "builds (each commit a new image)" if image else "builds (memory only)"
        self.summary[key] = (
            f"burst {burst:.1f} s: {delta.builds} {label}, {'newest' if newest else 'NOT newest'}"
        )
        return ok and newest

    def _revisions_fetched(self, since: float) -> list[str]:
        """Revisions the GitRepo's status named as fetched while the watch looked (each run's fetch)."""
        with self.watcher.lock:
            return [
                e.obj.get("status", {}).get("lastFetchedRevision", "")
                for e in self.watcher.events
                if e.kind == "gitrepos" and e.at >= since
            ]

    def unchanged(self) -> bool:
        print("\n== unchanged images: a README change, then a memory change (the images' store paths stay)")
        ok = True
        results = []
        for what in ("README", "memory"):
            before = scrape(self.sb)
            t0 = time.time()
            if what == "README":
                readme = self.fleet.work.path / "README.md"
                readme.write_text(f"fleet notes {secrets.token_hex(4)}\n")
                head = self.fleet.push("README only")
            else:
                self.memory += 128
                head = self.fleet.push(
                    "web01 memory", with_memory(vms_text(self.fleet), "web01", self.memory)
                )
            try:
                self.settle(head)
            except SandboxError as exc:
                print(f"{what}: not Ready in time: {str(exc).splitlines()[0]}", file=sys.stderr)
                ok = False
            delta = Delta(before, scrape(self.sb))
            plan = self.fleet.gitrepo()["status"].get("lastPlan") or {}
            calls = reimage_calls(self.sb, t0)
            reimages = len(plan.get("reimaged") or []) + len(calls)
            results.append((delta.builds, delta.uploads, reimages))
            print(
                f"{what:>7} commit {head[:12]}: nix builds {delta.builds}, evaluations {delta.step('eval')[0]},"
                f" image uploads {delta.uploads}, plan reimaged {plan.get('reimaged') or []},"
                f" updated {plan.get('updated') or []}, reimaging qm calls {calls or 'none'}"
                f" ({time.time() - t0:.1f} s to Ready)"
            )
        builds, uploads, reimages = (sum(r[i] for r in results) for i in range(3))
        self.summary["unchanged"] = f"unchanged: {builds} builds, {uploads} uploads, {reimages} reimages"
        return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--scenario", choices=("memory", "burst", "unchanged"), action="append")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    scenarios = args.scenario or ["memory", "burst", "unchanged"]
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="proxnix-bench-gitrepo-"))
    ok = True
    summary: dict[str, str] = {}
    with running_sandbox(SandboxConfig(dir=workdir, nodes=2, latency=args.latency)) as sb:
        watcher = Watcher(sb)
        try:
            watcher.start()
            fleet = open_fleet(sb, workdir / "work")
            control = workdir / "ssh-control"
            fleet.work.env["GIT_SSH_COMMAND"] += (
                f" -o ControlMaster=auto -o ControlPath={control} -o ControlPersist=20"
            )
            head = fleet.work.git("rev-parse", "HEAD")
            started = time.monotonic()
            fleet.apply_gitrepo()
            bench = Bench(sb, fleet, watcher, args.timeout, summary=summary)
            bench.settle(head)
            print(
                f"fleet Ready at {head[:12]} in {time.monotonic() - started:.1f} s (first build and uploads)"
            )
            if "memory" in scenarios:
                bench.memory_runs(args.runs)
            if "burst" in scenarios:
                ok = bench.burst(image=False) and ok
                ok = bench.burst(image=True) and ok
            if "unchanged" in scenarios:
                ok = bench.unchanged() and ok
        except SandboxError as exc:
            print(f"did not reach the end state: {exc}", file=sys.stderr)
            ok = False
        finally:
            watcher.stop.set()
            sb.stop_webhook()
            control = workdir / "ssh-control"  # the pushes' SSH master, if one is left
            subprocess.run(
                ["ssh", "-o", f"ControlPath={control}", "-O", "exit", "git-server"], capture_output=True
            )
    print(
        f"gitrepo push: {' | '.join(summary.values()) or 'no figures'}{'' if ok else ' (did not finish: exit 1)'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
