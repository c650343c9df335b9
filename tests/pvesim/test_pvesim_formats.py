"""Pure unit tests of pvesim's formatting and parsing functions against the strings of the facts sheet
(/work/shared/pve-cli-facts.md). No SSH, no processes."""

from __future__ import annotations

import pytest

from pvesim import cliargs, conffile, faults, propstr, render, schema
from pvesim.errors import ParamError, TaskError, UsageError
from pvesim.vmparams import normalize_tags

# §1 — the sheet's example, byte for byte (trailing spaces included).
SHEET_LIST = (
    "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n"
    "       100 web01                running    2048              32.00 12345     \n"
    "       101 VM 101               stopped    512                0.00 0         \n"
)


def test_qm_list_matches_the_sheet_byte_for_byte() -> None:
    text = render.qm_list_header()
    text += render.qm_list_row(100, "web01", "running", 2048 * 1024**2, 32 * 1024**3, 12345)
    text += render.qm_list_row(101, "VM 101", "stopped", 512 * 1024**2, 0, 0)
    assert text == SHEET_LIST


def test_qm_list_long_name_is_not_truncated_and_shifts_columns() -> None:
    row = render.qm_list_row(102, "a-very-long-virtual-machine-name", "stopped", 1024**3, 0, 0)
    assert (
        row == "       102 a-very-long-virtual-machine-name stopped    1024               0.00 0         \n"
    )


def test_perl_number_stringification() -> None:
    assert render.perl_num(2048.0) == "2048"
    assert render.perl_num(0.5) == "0.5"
    assert render.perl_num(7) == "7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0.0 B"),
        (1023, "1023.0 B"),
        (2.2 * 1024**3, "2.2 GiB"),
        (22.5 * 1024**2, "22.5 MiB"),
        (1024**4, "1.0 TiB"),
    ],
)
def test_render_bytes(value: float, expected: str) -> None:
    assert render.render_bytes(value, 1) == expected


def test_perl_pretty_json_uses_three_spaces_and_spaced_colons() -> None:
    data = [{"name": "lo", "ip-addresses": [{"prefix": 8, "ip-address": "127.0.0.1"}], "statistics": {}}]
    assert render.perl_json_pretty(data) == (
        "[\n"
        "   {\n"
        '      "ip-addresses" : [\n'
        "         {\n"
        '            "ip-address" : "127.0.0.1",\n'
        '            "prefix" : 8\n'
        "         }\n"
        "      ],\n"
        '      "name" : "lo",\n'
        '      "statistics" : {}\n'
        "   }\n"
        "]\n"
    )


def test_pvesh_json_is_compact_and_key_sorted() -> None:
    assert render.compact_json({"vmid": 100, "id": "qemu/100"}) == '{"id":"qemu/100","vmid":100}\n'


def test_status_verbose_sorts_keys_and_tab_indents_nested_hashes() -> None:
    text = render.recursive_hash(
        {"status": "running", "nics": {"tap100i0": {"netout": 2, "netin": 1}}, "cpus": 2}
    )
    assert text == "cpus: 2\nnics:\n\ttap100i0:\n\t\tnetin: 1\n\t\tnetout: 2\nstatus: running\n"


# §2 — config file and qm config value formats.


def test_description_encoding_matches_the_sheet() -> None:
    assert conffile.encode_text("line1: x\nline2") == "line1%3A x%0Aline2"
    assert conffile.encode_text("100% ü") == "100%25 %C3%BC"
    assert conffile.decode_text("line1%3A x%0Aline2") == "line1: x\nline2"


def test_config_file_layout_round_trip() -> None:
    text = (
        "#first line%3A with colon\n"
        "#second\n"
        "boot: order=scsi0;net0\n"
        "cores: 2\n"
        "net0: virtio=BC:24:11:00:00:01,bridge=vmbr0\n"
        "net10: virtio=BC:24:11:00:00:03,bridge=vmbr0\n"
        "net2: virtio=BC:24:11:00:00:02,bridge=vmbr0\n"
        "parent: snap1\n"
        "\n[PENDING]\n"
        "cores: 4\n"
        "delete: onboot,!tags\n"
        "\n[special:cloudinit]\n"
        "ipconfig0: ip=dhcp\n"
        "\n[snap1]\n"
        "cores: 1\n"
        "snaptime: 1700000000\n"
    )
    conf = conffile.parse(text)
    assert conf.main["description"] == "first line: with colon\nsecond"
    assert conf.pending == {"cores": "4", "delete": "onboot,!tags"}
    assert conf.pending_delete() == {"onboot": False, "tags": True}
    assert conf.cloudinit == {"ipconfig0": "ip=dhcp"}
    assert conf.snapshots["snap1"]["snaptime"] == "1700000000"
    assert conffile.format_conf(conf) == text
    assert len(conf.digest) == 40


def test_keys_sort_in_plain_ascii_order() -> None:
    conf = conffile.VmConf(main={"net2": "a", "net10": "b", "net0": "c", "boot": ""})
    assert conffile.format_conf(conf) == "boot: \nnet0: c\nnet10: b\nnet2: a\n"
    assert conffile.parse("boot: \n").main == {"boot": ""}


def test_description_trailing_whitespace_is_stripped_on_reading() -> None:
    conf = conffile.parse("#hello\n#\n#\nname: x\n")
    assert conf.main["description"] == "hello"


def test_merged_config_applies_pending_values_and_deletes() -> None:
    conf = conffile.parse("cores: 1\nonboot: 1\n\n[PENDING]\ncores: 4\ndelete: onboot\n")
    assert conf.merged() == {"cores": "4"}


@pytest.mark.parametrize(
    ("size", "text"),
    [(528 * 1024, "528K"), (4 * 1024**2, "4M"), (32 * 1024**3, "32G"), (1024**4, "1T"), (1000, "1000")],
)
def test_format_size(size: int, text: str) -> None:
    assert propstr.format_size(size) == text
    assert propstr.parse_size(text) == size


def test_drive_options_print_alphabetically_after_the_volume() -> None:
    drive = propstr.parse_drive("local-lvm:vm-131-disk-1,ssd=1,size=32768M,discard=on")
    assert drive.print() == "local-lvm:vm-131-disk-1,discard=on,size=32G,ssd=1"


def test_cdrom_drive() -> None:
    assert propstr.parse_drive("cdrom").print() == "cdrom,media=cdrom"
    assert propstr.parse_drive("none,media=cdrom").is_cdrom


def test_net_prints_model_with_mac_first() -> None:
    net = propstr.parse_net("virtio,firewall=1,bridge=vmbr0", modern_mac=True)
    assert net["macaddr"].startswith("BC:24:11:")
    assert propstr.print_net(net) == f"virtio={net['macaddr']},bridge=vmbr0,firewall=1"
    assert propstr.parse_net("e1000=aa:bb:cc:dd:ee:ff", True)["macaddr"] == "AA:BB:CC:DD:EE:FF"


def test_default_boot_order_first_disk_first_cdrom_first_net() -> None:
    conf = {
        "virtio0": "local-lvm:vm-1-disk-1,size=1G",
        "scsi0": "local-lvm:vm-1-disk-0,size=2G",
        "ide2": "none,media=cdrom",
        "net1": "virtio=BC:24:11:00:00:01",
    }
    assert propstr.default_boot_order(conf) == "order=scsi0;ide2;net1"
    assert propstr.default_boot_order({}) == ""


def test_bootdisk_size_is_the_first_non_cdrom_disk_of_the_boot_order() -> None:
    conf = {
        "boot": "order=ide2;virtio0",
        "ide2": "none,media=cdrom",
        "virtio0": "local-lvm:vm-1-disk-0,size=20G",
    }
    assert propstr.bootdisk_size(conf) == 20 * 1024**3
    assert propstr.bootdisk_size({"boot": "order=net0"}) == 0


# §4, §0 — parameter verification messages.


def _verify(values: dict[str, str], modern: bool = True) -> dict[str, str]:
    def lookup(name: str) -> schema.Validator | None:
        return schema.VMID if name == "vmid" else schema.vm_validator(name)

    return schema.validate(values, lookup, modern, "qm create <vmid> [OPTIONS]")


def test_param_error_renders_like_the_sheet() -> None:
    with pytest.raises(ParamError) as info:
        _verify({"vmid": "100", "name": "bad_name"})
    assert info.value.render() == (
        "400 Parameter verification failed.\n"
        "name: invalid format - value does not look like a valid DNS name\n"
        "\n"
        "qm create <vmid> [OPTIONS]\n"
    )
    assert info.value.rc == 255


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({"vmid": "99"}, {"vmid": "invalid format - value does not look like a valid VM ID"}),
        ({"vmid": "1000000000"}, {"vmid": "invalid format - value does not look like a valid VM ID"}),
        ({"tags": "ok;not/ok"}, {"tags": "invalid format - invalid characters in tag"}),
        ({"cores": "0"}, {"cores": "value must have a minimum value of 1"}),
        ({"sockets": "x"}, {"sockets": "type check ('integer') failed - got 'x'"}),
        ({"onboot": "maybe"}, {"onboot": "type check ('boolean') failed - got 'maybe'"}),
        (
            {"scsihw": "ahci"},
            {
                "scsihw": "value 'ahci' does not have a value in the enumeration "
                "'lsi, lsi53c810, virtio-scsi-pci, virtio-scsi-single, megasas, pvscsi'"
            },
        ),
        (
            {"memory": "8"},
            {
                "memory": "invalid format - format error",
                "memory.current": "value must have a minimum value of 16",
            },
        ),
        (
            {"scsi0": "local-lvm:1,foo=1"},
            {
                "scsi0": "invalid format - format error",
                "scsi0.foo": "property is not defined in schema and the schema does not allow additional properties",
            },
        ),
    ],
)
def test_parameter_messages(values: dict[str, str], errors: dict[str, str]) -> None:
    with pytest.raises(ParamError) as info:
        _verify(values)
    assert info.value.errors == errors


def test_memory_before_8_1_is_a_plain_integer() -> None:
    with pytest.raises(ParamError) as info:
        _verify({"memory": "8"}, modern=False)
    assert info.value.errors == {"memory": "value must have a minimum value of 16"}


def test_valid_values_are_normalised() -> None:
    assert _verify({"vmid": "100", "name": "web-01.example", "onboot": "yes", "memory": "current=2048"}) == {
        "vmid": "100",
        "name": "web-01.example",
        "onboot": "1",
        "memory": "2048",
    }


def test_tags_set_normalisation() -> None:
    assert normalize_tags("Web,db;web prod") == "db;prod;web"


def test_task_error_turns_newlines_into_spaces() -> None:
    assert TaskError("first\nsecond\n").render() == "first second\n"


# PVE's Getopt-based command line.


def _kind(name: str) -> str | None:
    return {"full": "bool", "current": "bool", "cores": "value"}.get(name)


def test_options_anywhere_and_optional_boolean_values() -> None:
    args = cliargs.parse(["--cores", "4", "100", "--full"], ("vmid",), _kind, "u")
    assert args.positional == {"vmid": "100"}
    assert args.options == {"cores": "4", "full": "1"}
    args = cliargs.parse(["-cores=2", "--current", "0", "100"], ("vmid",), _kind, "u")
    assert args.options == {"cores": "2", "current": "0"}


def test_command_line_errors() -> None:
    with pytest.raises(UsageError) as info:
        cliargs.parse([], ("vmid",), _kind, "qm start <vmid> [OPTIONS]")
    assert info.value.render() == "400 not enough arguments\n\nqm start <vmid> [OPTIONS]\n"
    with pytest.raises(UsageError) as info:
        cliargs.parse(["100", "--bogus", "1"], ("vmid",), _kind, "qm start <vmid> [OPTIONS]")
    assert (
        info.value.render()
        == "Unknown option: bogus\n400 unable to parse option\n\nqm start <vmid> [OPTIONS]\n"
    )
    with pytest.raises(UsageError, match="too many arguments"):
        cliargs.parse(["100", "101"], ("vmid",), _kind, "u")


# Fault SPEC syntax.


def test_fault_spec_parsing() -> None:
    rules = faults.parse_spec(
        'cmd="qm start" fail="start failed: simulated" count=1; node=pve2 down;'
        " cmd='qm set' locktimeout prob=0.3 skip=2; cmd=pvesh hang=30 rc=9"
    )
    assert [(r.action, r.arg, r.node, r.cmd) for r in rules] == [
        ("fail", "start failed: simulated", None, "qm start"),
        ("down", None, "pve2", ""),
        ("locktimeout", None, None, "qm set"),
        ("hang", "30", None, "pvesh"),
    ]
    assert (rules[0].count, rules[2].prob, rules[2].skip, rules[3].rc) == (1, 0.3, 2, 9)
    assert rules[0].describe() == "cmd='qm start' fail='start failed: simulated' count=1"


@pytest.mark.parametrize(
    "spec",
    [
        "cmd=qm",
        "fail fail",
        "bogus",
        "prob=2 fail",
        "count=x fail",
        "slow",
        "hang=soon",
        'fail="unterminated',
    ],
)
def test_bad_fault_specs_are_rejected(spec: str) -> None:
    with pytest.raises(faults.SpecError):
        faults.parse_spec(spec)


def test_fault_command_patterns_match_word_prefixes_with_wildcards() -> None:
    rule = faults.Rule(action="fail", cmd="qm set 10?")
    assert rule.matches(["qm", "set", "100", "--cores", "2"])
    assert not rule.matches(["qm", "set", "200"])
    assert not rule.matches(["qm", "start", "100"])
    assert faults.Rule(action="fail").matches(["pvesh", "get", "/nodes"])
