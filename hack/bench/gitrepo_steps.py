#!/usr/bin/env python3
"""Timings of the GitRepo controller's I/O steps with real git and real nix on this machine.

    .venv/bin/python hack/bench/gitrepo_steps.py

A test git server (sshd + git-shell on loopback) holds the test fleet (tests/fixtures/flakes); the git adapter fetches
it over SSH (cold: empty cache; incremental: after one more commit; no-op: nothing new), checks the commit out, and the
nix adapter evaluates the `proxnix` output, probes the images and builds them: cold (images with a fresh label, never
built) and warm (same images: nix finds them valid; rooted: the adapter skips nix). Must run as root (sshd).
The last line is `gitrepo steps: fetch cold <s> incr <s> | eval cold <s> warm <s> | build cold <s> warm <s>`.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT))

from proxnix.adapters.git import GitSource, RepoKey  # noqa: E402
from proxnix.adapters.nix import Nix  # noqa: E402
from proxnix.api.gitrepo import GitRef  # noqa: E402
from proxnix.sources.flake.checks import used_image_types  # noqa: E402
from proxnix.sources.flake.nix_commands import FlakeRef  # noqa: E402
from proxnix.sources.flake.vms import parse_vms_json  # noqa: E402
from proxnix.sources.gitsource import GitCredentials  # noqa: E402
from proxnix_testbed.gitserver import GitServer  # noqa: E402
from proxnix_testbed.nixconf import nix_env  # noqa: E402
from tests.support.flakes import write_flake, write_labels  # noqa: E402
from tests.support.gitwork import WorkingCopy  # noqa: E402

KEY = RepoKey("bench", "fleet")
T = TypeVar("T")


async def timed(label: str, figures: dict[str, float], awaitable: Awaitable[T]) -> T:
    start = time.perf_counter()
    result = await awaitable
    figures[label] = time.perf_counter() - start
    print(f"{label:<28} {figures[label]:8.3f} s", flush=True)
    return result


async def main() -> None:
    figures: dict[str, float] = {}
    run = secrets.token_hex(4)
    with tempfile.TemporaryDirectory() as tmp, GitServer.start(Path(tmp) / "server") as server:
        server.create_repo("fleet")
        work = WorkingCopy(Path(tmp) / "work", server.ssh_url("fleet"), server.ssh_command())
        write_flake(work.path, "fleet", {"web": f"web-{run}", "db": f"db-{run}"})
        work.commit("fleet")
        work.push()
        creds = GitCredentials.from_secret(
            {"identity": server.client_key.read_bytes(), "known_hosts": server.known_hosts.read_bytes()}
        )
        git = GitSource(Path(tmp) / "cache")
        url = server.ssh_url("fleet")
        await timed("git fetch cold", figures, git.fetch(KEY, url, GitRef(branch="main"), creds))
        write_labels(work.path, {"web": f"web-{run}", "db": f"db-{run}", "unused": "never-built"})
        (work.path / "vms.nix").write_text((work.path / "vms.nix").read_text().replace("2048", "3072"))
        work.commit("web01: more memory")
        work.push()
        fetched = await timed(
            "git fetch incremental", figures, git.fetch(KEY, url, GitRef(branch="main"), creds)
        )
        await timed("git fetch no-op", figures, git.fetch(KEY, url, GitRef(branch="main"), creds))
        nix = Nix(Path(tmp) / "nix", env=nix_env())
        async with git.checkout(KEY, fetched.revision, url=url) as folder:
            flake = FlakeRef(str(folder))
            text = await timed("nix eval cold", figures, nix.evaluate(flake))
            await timed("nix eval warm", figures, nix.evaluate(flake))
            images = used_image_types(parse_vms_json(text))
            probes = await timed("nix eval image probe", figures, nix.probe(flake, images))
            built = await timed(
                "nix build cold",
                figures,
                nix.build(KEY, "1" * 40, flake, list(probes.values())),
            )
            await timed("nix build warm", figures, nix.build(KEY, "2" * 40, flake, list(probes.values())))
            await nix.add_roots(KEY, [b.store_path for b in built.values()])
            await timed(
                "nix build rooted (skipped)", figures, nix.build(KEY, "3" * 40, flake, list(probes.values()))
            )
            nix.drop_roots(KEY)
    print(
        f"gitrepo steps: fetch cold {figures['git fetch cold']:.3f} s incr {figures['git fetch incremental']:.3f} s"
        f" | eval cold {figures['nix eval cold']:.3f} s warm {figures['nix eval warm']:.3f} s"
        f" | build cold {figures['nix build cold']:.3f} s warm {figures['nix build warm']:.3f} s"
    )


if __name__ == "__main__":
    asyncio.run(main())
