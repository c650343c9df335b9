from __future__ import annotations

import pytest

from proxnix.proxmox.errors import ParseError
from proxnix.proxmox.qm_list import parse_qm_list
from tests.proxmox.conftest import fixture_text


def test_24_vm_listing_with_spaces_and_long_names() -> None:
    entries = parse_qm_list(fixture_text("qm-list-24.txt"))
    assert len(entries) == 24
    by_id = {e.vmid: e for e in entries}
    assert by_id[101].name == "VM 101"
    assert by_id[101].status == "stopped"
    assert by_id[101].pid == 0
    assert by_id[104].name == "Copy-of-VM-k3s-warm"
    long = by_id[120]
    assert long.name == "very-long-vm-name-that-shifts-the-columns"
    assert (long.status, long.memory_mib, long.boot_disk_gib, long.pid) == ("running", 1024, 10.0, 4410)
    assert by_id[99999].name == "exactly-twenty-chars"
    assert by_id[99999].status == "running"
    assert by_id[123456789].boot_disk_gib == 0.25
    assert by_id[121].boot_disk_gib == 1000.0
    assert [e.vmid for e in entries] == sorted(by_id)


def test_facts_sheet_example() -> None:
    entries = parse_qm_list(fixture_text("qm-list-facts.txt"))
    assert [(e.vmid, e.name, e.status, e.memory_mib, e.boot_disk_gib, e.pid) for e in entries] == [
        (100, "web01", "running", 2048, 32.0, 12345),
        (101, "VM 101", "stopped", 512, 0.0, 0),
    ]


def test_no_vms_prints_nothing() -> None:
    assert parse_qm_list(fixture_text("qm-list-empty.txt")) == []
    assert parse_qm_list("\n") == []


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("VMID NAME\n", "VMID NAME"),
        (
            "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n"
            "       100 web01                running    lots              32.00 12345\n",
            "       100 web01                running    lots              32.00 12345",
        ),
        (
            "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n"
            "       100 web01                running    2048              32.00 1\n"
            "       100 web01                running    2048              32.00 1\n",
            "       100 web01                running    2048              32.00 1",
        ),
    ],
)
def test_unexpected_output_names_command_and_line(text: str, offending: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_qm_list(text)
    assert info.value.command == "qm list"
    assert info.value.line == offending
    assert "qm list" in str(info.value)
