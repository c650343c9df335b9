"""tests/support/nodecalls: how the lifecycle e2e tests count writes per VM from pvesim's call log (argv as the
driver sends them)."""

from __future__ import annotations

from collections import Counter

from tests.support.nodecalls import touched_twice, writes_of


def test_writes_of_each_qm_call_the_driver_makes() -> None:
    assert writes_of(("qm", "set", "100", "--memory", "4096", "--digest", "abc")) == (
        100,
        [("set", "memory")],
    )
    assert writes_of(("qm", "set", "100", "--delete", "net1,ide2", "--skiplock", "1")) == (
        100,
        [("set", "net1"), ("set", "ide2")],
    )
    assert writes_of(("qm", "disk", "import", "100", "/var/cache/img.qcow2", "local-lvm")) == (
        100,
        [("import", "local-lvm")],
    )
    assert writes_of(("qm", "importdisk", "101", "/var/cache/img.qcow2", "local-lvm")) == (
        101,
        [("import", "local-lvm")],  # the same write as `qm disk import`
    )
    assert writes_of(("qm", "disk", "resize", "100", "scsi0", "20G")) == (100, [("resize", "scsi0")])
    assert writes_of(("qm", "create", "110", "--name", "db01")) == (110, [("create",)])
    assert writes_of(("qm", "config", "110")) is None
    assert writes_of(("qm", "stop", "110")) is None
    assert writes_of(("pvesh", "get", "/nodes")) is None


def test_a_write_made_twice_is_touched_twice() -> None:
    once = {("pve1", 100): Counter({("set", "memory"): 1, ("create",): 1})}
    assert touched_twice(once) == {}
    twice = {("pve1", 100): Counter({("set", "memory"): 2, ("create",): 1})}
    assert touched_twice(twice) == {("pve1", 100): [("set", "memory")]}
