"""qm status, qm pending, pvesh JSON, guest agent JSON and disk import outputs."""

from __future__ import annotations

import pytest

from proxnix.proxmox.disk_import import parse_created_disks, parse_import_from_output, parse_import_output
from proxnix.proxmox.errors import ParseError
from proxnix.proxmox.guest_agent import parse_network_interfaces, routable_addresses
from proxnix.proxmox.pvesh import parse_cluster_resources, parse_nextid, parse_nodes, parse_version
from proxnix.proxmox.qm_pending import parse_qm_pending, pending_keys
from proxnix.proxmox.qm_status import parse_qm_status
from tests.proxmox.conftest import fixture_text


def test_qm_status_plain_and_verbose() -> None:
    assert parse_qm_status(fixture_text("qm-status-stopped.txt")).status == "stopped"
    stopped = parse_qm_status(fixture_text("qm-status-verbose-stopped.txt"))
    assert stopped.power_state == "stopped"
    assert stopped.values["maxmem"] == "2147483648"
    assert stopped.pid is None
    running = parse_qm_status(fixture_text("qm-status-verbose-running-paused.txt"))
    assert running.status == "running"
    assert running.power_state == "paused"
    assert running.lock == "backup"
    assert running.pid == 12345
    assert running.nested["blockstat"] == {
        "scsi0": {
            "account_failed": "1",
            "flush_operations": "12",
            "rd_bytes": "370287104",
            "wr_bytes": "12345678",
        },
        "ide2": {"rd_bytes": "0"},
    }
    assert running.nested["proxmox-support"]["pbs-library-version"] == "1.4.1 (UNKNOWN)"  # type: ignore[index]


@pytest.mark.parametrize("text", ["", "status: exploded\n", "weird line\n", "\tcpus: 1\n", "a:\n\t\tb: 1\n"])
def test_qm_status_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_qm_status(text)


def test_qm_pending() -> None:
    items = parse_qm_pending(fixture_text("qm-pending.txt"))
    assert items["cores"].current == "2"
    assert items["cores"].pending == "4"
    assert items["onboot"].delete
    assert items["sockets"].current is None
    assert items["sockets"].pending == "2"
    assert items["description"].current == "Managed by proxnix.\nproxnix.io/uid: abc"
    assert pending_keys(items) == ["cores", "memory", "onboot", "sockets"]
    with pytest.raises(ParseError) as info:
        parse_qm_pending("cur cores: 1\nnext cores: 2\n")
    assert info.value.line == "next cores: 2"


def test_cluster_resources() -> None:
    guests = {g.vmid: g for g in parse_cluster_resources(fixture_text("pvesh-cluster-resources.json"))}
    assert set(guests) == {100, 101, 102, 200, 300, 999}
    assert guests[100].node == "pve1"
    assert guests[100].status == "running"
    assert guests[100].tags == ("nix-0123456789ab", "proxnix")
    assert guests[100].maxmem == 2147483648
    assert guests[102].lock == "backup"
    assert guests[200].type == "lxc"
    assert guests[300].status == "unknown"
    assert guests[300].name == ""
    assert guests[999].template is True
    assert guests[999].extra["hastate"] == "started"
    assert parse_cluster_resources(fixture_text("pvesh-cluster-resources-empty.json")) == []


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        "[1]",
        '[{"type": "qemu", "node": "x"}]',
        '[{"type": "qemu", "vmid": "abc", "node": "x"}]',
        "oops",
    ],
)
def test_cluster_resources_errors(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_cluster_resources(text)
    assert info.value.command.startswith("pvesh get /cluster/resources")


def test_nodes_nextid_version() -> None:
    nodes = parse_nodes(fixture_text("pvesh-nodes.json"))
    assert [(n.node, n.status) for n in nodes] == [("pve1", "online"), ("pve2", "offline")]
    assert parse_nextid(fixture_text("pvesh-nextid.json")) == 104
    assert parse_nextid("105\n") == 105
    with pytest.raises(ParseError):
        parse_nextid('"next"')
    assert parse_version('{"release":"8.4","repoid":"2a5fa54a","version":"8.4.1"}\n') == "8.4.1"


def test_guest_agent_interfaces() -> None:
    interfaces = parse_network_interfaces(fixture_text("guest-network-get-interfaces.json"))
    assert [i.name for i in interfaces] == ["lo", "ens18", "docker0"]
    assert interfaces[1].mac == "bc:24:11:2a:3b:4c"
    assert interfaces[1].addresses[0].prefix == 24
    assert interfaces[2].addresses == ()
    assert routable_addresses(interfaces) == ["192.168.1.50", "2001:db8::50"]
    wrapped = parse_network_interfaces('{"result": [{"name": "eth0", "ip-addresses": []}]}')
    assert wrapped[0].name == "eth0"
    with pytest.raises(ParseError):
        parse_network_interfaces('[{"ip-addresses": []}]')


def test_import_success_lines_all_versions() -> None:
    old = parse_import_output(fixture_text("importdisk-lvm-old.txt"))
    assert (old.slot, old.volume) == ("unused0", "local-lvm:vm-100-disk-0")
    bare = parse_import_output(fixture_text("importdisk-no-storage-prefix.txt"))
    assert (bare.slot, bare.volume) == ("unused1", "vm-105-disk-1")
    new = parse_import_output(fixture_text("disk-import-dir-8.3.txt"))
    assert (new.slot, new.volume) == ("unused0", "local:100/vm-100-disk-0.raw")
    created = parse_import_from_output(fixture_text("import-from-set.txt"), "scsi0")
    assert (created.slot, created.volume, created.size_bytes) == (
        "scsi0",
        "local-lvm:vm-100-disk-0",
        20 * 1024**3,
    )
    assert parse_created_disks("nothing here\n") == []


def test_import_without_success_line_names_last_line() -> None:
    with pytest.raises(ParseError) as info:
        parse_import_output(fixture_text("importdisk-progress-only.txt"))
    assert info.value.line == "transferred 0.0 B of 2.0 GiB (0.00%)"
    with pytest.raises(ParseError):
        parse_import_from_output(fixture_text("import-from-set.txt"), "virtio0")
