"""Every parser either returns or raises one ParseError, whatever the node prints."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxnix.proxmox.disk_import import parse_created_disks, parse_import_output
from proxnix.proxmox.errors import ParseError
from proxnix.proxmox.guest_agent import parse_network_interfaces
from proxnix.proxmox.image_cache import parse_probe, parse_receive
from proxnix.proxmox.inventory import parse_inventory
from proxnix.proxmox.pvesh import parse_cluster_resources, parse_nextid, parse_nodes
from proxnix.proxmox.qm_list import parse_qm_list
from proxnix.proxmox.qm_pending import parse_qm_pending
from proxnix.proxmox.qm_status import parse_qm_status
from proxnix.proxmox.vm_config import parse_config_json, parse_vm_config

PARSERS: dict[str, Callable[[str], object]] = {
    "qm_list": parse_qm_list,
    "vm_config": parse_vm_config,
    "config_json": lambda t: parse_config_json(t, command="pvesh"),
    "qm_status": parse_qm_status,
    "qm_pending": parse_qm_pending,
    "resources": parse_cluster_resources,
    "nodes": parse_nodes,
    "nextid": parse_nextid,
    "agent": parse_network_interfaces,
    "import": parse_import_output,
    "created": parse_created_disks,
    "probe": parse_probe,
    "receive": parse_receive,
    "inventory": lambda t: parse_inventory(t, "0123456789abcdef", node="pve1"),
}

# Text that looks a little like Proxmox output, to get past the first checks.
pve_like = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.sampled_from(
            [
                "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       ",
                "       100 web01                running    2048              32.00 12345     ",
                "status: running",
                "[PENDING]",
                "cores: 2",
                "#desc%3A x",
                "\tnested: 1",
                "cur cores: 1",
                '[{"vmid": 100, "type": "qemu", "node": "pve1"}]',
                '{"result": [{"name": 1}]}',
                "@@0123456789abcdef begin 1",
                "@@0123456789abcdef conf 100",
                "@@0123456789abcdef resources",
                "@@0123456789abcdef end",
                "present 12",
                "scsi0: successfully created disk 'x'",
            ]
        ),
    ),
    max_size=8,
).map("\n".join)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(text=pve_like)
def test_parser_returns_or_raises_parse_error(name: str, text: str) -> None:
    error: ParseError | None = None
    try:
        PARSERS[name](text)
    except ParseError as exc:
        error = exc
    assert error is None or error.command
