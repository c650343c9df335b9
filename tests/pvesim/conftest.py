"""Fixtures for the pvesim tests: one simulated 2-node cluster (pve1, pve2) behind real sshd for the whole test
session, reset to an empty state with the baseline settings before every test that asks for `pve`.

    def test_x(pve: SimCluster, pve1: SshNode) -> None:
        assert pve1.run("qm list").out == ""
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvesim import sshd
from pvesim.testing import SimCluster, SshNode, running_cluster

# Short lock timeouts keep lock-contention tests fast; everything else is as on a real node.
BASE_SETTINGS = {"lock_timeout": 2.0, "create_lock_timeout": 1.0}


@pytest.fixture(scope="session")
def pvesim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    problems = sshd.check_host()
    if problems:
        pytest.fail("pvesim needs: " + "; ".join(problems))
    with running_cluster(tmp_path_factory.mktemp("pvesim"), nodes=2, settings=BASE_SETTINGS) as cluster:
        yield cluster


@pytest.fixture
def pve(pvesim_cluster: SimCluster) -> SimCluster:
    cluster = pvesim_cluster
    baseline = {"nodes": list(cluster.nodes), "defaults": dict(BASE_SETTINGS), "node_settings": {}}
    cluster.reset()
    cluster.layout.write_cluster(baseline)
    return cluster


@pytest.fixture
def pve1(pve: SimCluster) -> SshNode:
    return pve.node("pve1")


@pytest.fixture
def pve2(pve: SimCluster) -> SshNode:
    return pve.node("pve2")


@pytest.fixture(scope="session")
def qcow2_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 GiB (virtual) qcow2 image with a little data in it."""
    path = tmp_path_factory.mktemp("images") / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1G"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 64k", str(path)], check=False, capture_output=True)
    return path
