"""pvesh get over SSH (§10, §12)."""

from __future__ import annotations

import json

from pvesim.testing import SimCluster, SshNode


def _json(node: SshNode, path: str, *options: str) -> object:
    out = node.ok(f"pvesh get {path} --output-format json {' '.join(options)}")
    assert out.endswith("\n")
    assert out.count("\n") == 1
    return json.loads(out)


def test_cluster_resources_lists_every_vm_of_the_cluster(pve1: SshNode, pve2: SshNode) -> None:
    pve1.ok("qm create 100 --name web --memory 2048 --cores 2 --scsi0 local-lvm:4 --tags 'b;a'; qm start 100")
    pve2.ok("qm create 200")
    out = pve2.ok("pvesh get /cluster/resources --type vm --output-format json")
    assert out.startswith('[{"cpu":')  # compact, keys sorted
    resources = json.loads(out)
    assert [(r["id"], r["node"], r["status"]) for r in resources] == [
        ("qemu/100", "pve1", "running"),
        ("qemu/200", "pve2", "stopped"),
    ]
    web = resources[0]
    assert web["type"] == "qemu"
    assert web["vmid"] == 100
    assert web["maxmem"] == 2 * 1024**3
    assert web["maxdisk"] == 4 * 1024**3
    assert web["maxcpu"] == 2
    assert web["tags"] == "b;a"
    assert web["template"] == 0
    assert web["uptime"] >= 0
    assert {"cpu", "mem", "disk", "netin", "netout", "diskread", "diskwrite", "name"} <= set(web)
    assert resources[1]["name"] == "VM 200"
    assert "tags" not in resources[1]


def test_cluster_resources_before_the_first_status_broadcast(pve: SimCluster, pve1: SshNode) -> None:
    pve.tune(statd_lag=60)
    pve1.ok("qm create 100 --name fresh")
    assert _json(pve1, "/cluster/resources", "--type vm") == [
        {"id": "qemu/100", "node": "pve1", "status": "unknown", "type": "qemu", "vmid": 100}
    ]


def test_cluster_resources_without_type(pve1: SshNode) -> None:
    pve1.ok("qm create 100")
    kinds = [r["type"] for r in _json(pve1, "/cluster/resources")]  # type: ignore[union-attr]
    assert kinds.count("qemu") == 1
    assert kinds.count("node") == 2
    assert kinds.count("storage") == 4


def test_nodes(pve: SimCluster, pve1: SshNode) -> None:
    nodes = _json(pve1, "/nodes")
    assert isinstance(nodes, list)
    assert [(n["id"], n["node"], n["type"], n["status"]) for n in nodes] == [
        ("node/pve1", "pve1", "node", "online"),
        ("node/pve2", "pve2", "node", "online"),
    ]
    for key in ("uptime", "cpu", "maxcpu", "mem", "maxmem", "disk", "maxdisk", "ssl_fingerprint"):
        assert key in nodes[0]
    pve.add_faults("down", node="pve2")
    assert _json(pve1, "/nodes")[1] == {
        "id": "node/pve2",
        "node": "pve2",
        "status": "offline",
        "type": "node",
    }  # type: ignore[index]


def test_vm_config_types(pve: SimCluster, pve1: SshNode, pve2: SshNode) -> None:
    pve1.ok(
        "qm create 100 --memory 2048 --cores 2 --onboot 1 --agent 1 --cipassword x --description 'a: b\nc'"
    )
    config = _json(pve2, "/nodes/pve1/qemu/100/config")
    assert isinstance(config, dict)
    assert config["memory"] == "2048"
    assert config["cores"] == 2
    assert config["onboot"] == 1
    assert config["agent"] == "1"
    assert config["description"] == "a: b\nc"
    assert config["cipassword"] == "**********"
    assert len(config["digest"]) == 40
    pve.tune(pve_version="8.0")
    assert _json(pve2, "/nodes/pve1/qemu/100/config")["memory"] == 2048  # type: ignore[index]


def test_vm_config_pending_and_current(pve1: SshNode) -> None:
    pve1.ok("qm create 100 --cores 1; qm start 100; qm set 100 --cores 8")
    assert _json(pve1, "/nodes/pve1/qemu/100/config")["cores"] == 8  # type: ignore[index]
    assert _json(pve1, "/nodes/pve1/qemu/100/config", "--current 1")["cores"] == 1  # type: ignore[index]


def test_vm_config_errors(pve: SimCluster, pve1: SshNode) -> None:
    assert pve1.run("pvesh get /nodes/pve2/qemu/100/config").err == (
        "Configuration file 'nodes/pve2/qemu-server/100.conf' does not exist\n"
    )
    assert pve1.run("pvesh get /nodes/pve7/qemu/100/config").rc == 255


def test_nextid(pve1: SshNode, pve2: SshNode) -> None:
    assert pve1.ok("pvesh get /cluster/nextid --output-format json") == '"100"\n'
    pve1.ok("qm create 100")
    pve2.ok("qm create 101")
    assert pve1.ok("pvesh get /cluster/nextid") == "102\n"
    assert pve1.ok("pvesh get /cluster/nextid --vmid 150 --output-format json") == '"150"\n'
    taken = pve2.run("pvesh get /cluster/nextid --vmid 100")
    assert (taken.rc, taken.err) == (
        255,
        "400 Parameter verification failed.\nvmid: VM 100 already exists\n\npvesh get <api_path> [OPTIONS] [FORMAT_OPTIONS]\n",
    )


def test_unknown_path_and_pretty_output(pve1: SshNode) -> None:
    assert pve1.run("pvesh get /nope").err == "No 'get' handler defined for '/nope'\n"
    assert pve1.ok("pvesh get /version --output-format json-pretty").startswith('{\n   "release" : "8.3",\n')
