"""The nix adapter against real nix (Debian's 2.8 here) and the test flakes: eval, probe, build, logs, GC roots,
hashing once per store path, timeouts, the output cap and the global bound on concurrent builds."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from pathlib import Path

import pytest

from proxnix.adapters import nix as nix_module
from proxnix.adapters.git import RepoKey
from proxnix.adapters.hashing import FileDigest
from proxnix.adapters.nix import Nix, NixError, NixErrorKind
from proxnix.sources.flake.nix_commands import FlakeRef, ImageAttr
from proxnix.sources.flake.vms import parse_vms_json
from proxnix_testbed.nixconf import nix_env
from tests.support.flakes import write_flake
from tests.support.kubeapi import eventually

KEY = RepoKey("default", "fleet")
REVISION = "1" * 40


def print_roots() -> str:
    argv = ["nix-store", "--gc", "--print-roots"]
    return subprocess.run(argv, capture_output=True, text=True, env=nix_env(), check=True).stdout


def builders_running(label: str) -> bool:
    """Whether a test derivation's builder with this label is still running (found by its environment)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if f"label={label}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                return True
        except OSError:
            continue
    return False


def make_nix(tmp_path: Path, **options: object) -> Nix:
    return Nix(tmp_path / "state", env=nix_env(), **options)  # type: ignore[arg-type]


def flake(tmp_path: Path, variant: str = "fleet", **labels: str) -> FlakeRef:
    return FlakeRef(
        str(write_flake(tmp_path / f"flake-{variant}-{'-'.join(labels.values())}", variant, labels))
    )


async def test_version_is_detected(tmp_path: Path) -> None:
    version = await make_nix(tmp_path).version()
    assert version >= (await make_nix(tmp_path).version())
    assert version.major == 2
    assert version.minor >= 8


async def test_evaluate_probe_and_build_the_fleet(tmp_path: Path) -> None:
    nix = make_nix(tmp_path)
    ref = flake(tmp_path)
    vms = parse_vms_json(await nix.evaluate(ref))
    assert sorted(vms) == ["db01", "web01", "web02"]
    probes = await nix.probe(ref, ["db", "mail", "web"])
    assert sorted(probes) == ["db", "web"]
    assert probes["db"].attr is ImageAttr.IMAGES_QEMU
    built = await nix.build(KEY, REVISION, ref, list(probes.values()))
    for name in ("db", "web"):
        image = built[name]
        data = await asyncio.to_thread(Path(image.file).read_bytes)
        assert data[:4] == b"QFI\xfb", "a real qcow2"
        assert image.sha256 == hashlib.sha256(data).hexdigest()
        assert image.store_path == probes[name].out_path
    assert built["db"].file.endswith("/nixos-image-db-25.05-x86_64-linux.qcow2")
    assert nix.log_path(KEY, REVISION).exists()


async def test_a_changed_label_is_a_changed_image(tmp_path: Path) -> None:
    nix = make_nix(tmp_path)
    one = await nix.probe(flake(tmp_path), ["web", "db"])
    two = await nix.probe(flake(tmp_path, web="web-v2"), ["web", "db"])
    assert one["web"].out_path != two["web"].out_path
    assert one["db"].out_path == two["db"].out_path


async def test_an_eval_error_says_what_nix_said(tmp_path: Path) -> None:
    with pytest.raises(NixError) as caught:
        await make_nix(tmp_path).evaluate(flake(tmp_path, "eval-error"))
    assert caught.value.kind is NixErrorKind.EVAL_FAILED
    assert "undefined variable 'memory'" in caught.value.message


async def test_a_failed_build_keeps_its_log_and_reports_the_last_lines(tmp_path: Path) -> None:
    nix = make_nix(tmp_path)
    ref = flake(tmp_path, web="fail")
    probes = await nix.probe(ref, ["web"])
    with pytest.raises(NixError) as caught:
        await nix.build(KEY, REVISION, ref, [probes["web"]])
    assert caught.value.kind is NixErrorKind.BUILD_FAILED
    assert "making the image failed on purpose" in caught.value.message
    assert caught.value.log_path == nix.log_path(KEY, REVISION)
    assert "making the image failed on purpose" in caught.value.log_path.read_text()
    assert (nix.stats.builds, nix.stats.failures, nix.stats.running) == (1, 1, 0)


async def test_each_store_path_is_hashed_once_and_rooted_images_are_not_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real = nix_module.file_sha256

    def counting(path: Path) -> FileDigest:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(nix_module, "file_sha256", counting)
    nix = make_nix(tmp_path)
    ref = flake(tmp_path)
    probes = list((await nix.probe(ref, ["db", "web"])).values())
    first = await nix.build(KEY, REVISION, ref, probes)
    await nix.add_roots(KEY, [b.store_path for b in first.values()])
    log = nix.log_path(KEY, REVISION)
    log.unlink()
    again = await nix.build(KEY, "2" * 40, ref, probes)
    assert again == first
    assert len(hashed) == 2
    assert (nix.stats.builds, nix.stats.failures) == (1, 0), "a build that was skipped is not counted"
    assert nix.stats.seconds > 0
    assert not nix.log_path(KEY, "2" * 40).exists(), "all images rooted: nix build is not run"
    restarted = make_nix(tmp_path)
    known = {b.file: b.sha256 for b in first.values()}
    assert await restarted.build(KEY, "3" * 40, ref, probes, known_sha256=known) == first
    assert len(hashed) == 2, "a restarted operator reuses the hashes from status"


async def test_gc_roots_are_added_and_old_ones_dropped(tmp_path: Path) -> None:
    nix = make_nix(tmp_path)
    ref = flake(tmp_path)
    probes = await nix.probe(ref, ["db", "web"])
    built = await nix.build(KEY, REVISION, ref, list(probes.values()))
    await nix.add_roots(KEY, [b.store_path for b in built.values()])
    assert nix.rooted(KEY) == sorted(b.store_path for b in built.values())
    roots = await asyncio.to_thread(print_roots)
    for image in built.values():
        assert f"{nix.roots_dir(KEY)}/{Path(image.store_path).name} -> {image.store_path}" in roots
    dropped = nix.drop_roots(KEY, keep=[built["web"].store_path])
    assert dropped == [built["db"].store_path]
    assert nix.rooted(KEY) == [built["web"].store_path]


async def test_a_build_past_its_timeout_is_killed(tmp_path: Path) -> None:
    nix = make_nix(tmp_path, build_timeout=1.0)
    ref = flake(tmp_path, web="slow-timeout")
    probes = await nix.probe(ref, ["web"])
    with pytest.raises(NixError) as caught:
        await nix.build(KEY, REVISION, ref, [probes["web"]])
    assert caught.value.kind is NixErrorKind.TIMEOUT
    assert caught.value.message == "nix build did not finish within 1 s"
    assert not builders_running("slow-timeout"), "the builder must not outlive the timeout"


async def test_an_output_over_the_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NixError) as caught:
        await make_nix(tmp_path, max_output=100).evaluate(flake(tmp_path))
    assert caught.value.kind is NixErrorKind.OUTPUT_TOO_LARGE


async def test_builds_across_gitrepos_wait_for_a_slot(tmp_path: Path) -> None:
    nix = make_nix(tmp_path, max_concurrent_builds=1, build_timeout=60)
    slow_ref = flake(tmp_path, web="slow-slot")
    slow = await nix.probe(slow_ref, ["web"])
    other_key = RepoKey("default", "other")
    quick_ref = flake(tmp_path, web="quick-slot")
    quick = await nix.probe(quick_ref, ["web"])
    first = asyncio.create_task(nix.build(KEY, REVISION, slow_ref, [slow["web"]]))
    await eventually(nix.log_path(KEY, REVISION).exists, within=30, what="the slow build to start")
    second = asyncio.create_task(nix.build(other_key, REVISION, quick_ref, [quick["web"]]))
    for _ in range(50):  # 1 s while the slow build runs: the other GitRepo's build has not started
        await asyncio.sleep(0.02)
        assert not nix.log_path(other_key, REVISION).exists()
    assert builders_running("slow-slot")
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not builders_running("slow-slot"), "a cancelled build stops its builder"
    built = await asyncio.wait_for(second, 30)
    assert built["web"].store_path == quick["web"].out_path


async def test_nix_missing_is_a_clear_error(tmp_path: Path) -> None:
    nix = Nix(tmp_path / "state", env={"PATH": str(tmp_path)})
    with pytest.raises(NixError) as caught:
        await nix.version()
    assert caught.value.kind is NixErrorKind.NIX_MISSING


async def test_only_the_newest_build_logs_are_kept(tmp_path: Path) -> None:
    nix = make_nix(tmp_path, keep_logs=2)
    ref = flake(tmp_path)
    probes = list((await nix.probe(ref, ["web"])).values())
    revisions = [str(i) * 40 for i in range(1, 5)]
    for revision in revisions:
        await nix.build(KEY, revision, ref, probes)
    kept = sorted(p.stem for p in nix.log_path(KEY, REVISION).parent.glob("*.log"))
    assert kept == sorted(revisions[-2:])
