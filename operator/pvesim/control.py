"""Managing a simulated cluster from outside: up, down, reset, faults at runtime, settings, cluster info.

This is the Python API behind the `pvesim` CLI; tests use it directly::

    info = control.up(tmp_path, nodes=2, settings={"lock_timeout": 1})
    ...
    control.add_faults(tmp_path, 'cmd="qm start" fail="boom" count=1', node="pve1")
    control.down(tmp_path)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pvesim import calllog, faults, sshd
from pvesim.layout import PVE_VERSIONS, SETTING_NAMES, Layout, Settings
from pvesim.storage import DEFAULT_STORAGE_CFG
from pvesim.vmstore import VmStore

VZ_DIRS = ("images", "template/iso", "template/cache", "import", "dump", "snippets")


@dataclass(frozen=True)
class NodeInfo:
    name: str
    host: str
    port: int
    user: str
    identityFile: str
    knownHostsFile: str

    def ssh_args(self) -> list[str]:
        """`ssh` options to reach this node with host-key checking on (append the command)."""
        return [
            "-i", self.identityFile,
            "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f'UserKnownHostsFile="{self.knownHostsFile}"',  # quoted: ssh splits this option on spaces
            "-o", "BatchMode=yes",
            "-p", str(self.port),
            f"{self.user}@{self.host}",
        ]  # fmt: skip


@dataclass(frozen=True)
class ClusterInfo:
    nodes: list[NodeInfo]
    dir: str

    def node(self, name: str) -> NodeInfo:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def to_json(self) -> str:
        return json.dumps({"nodes": [asdict(n) for n in self.nodes], "dir": self.dir}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterInfo:
        data = json.loads(text)
        return cls([NodeInfo(**n) for n in data["nodes"]], data["dir"])


class PvesimError(RuntimeError):
    pass


def info(state_dir: str | os.PathLike[str]) -> ClusterInfo:
    layout = Layout(Path(state_dir).resolve())
    if not layout.info_file.exists():
        raise PvesimError(f"no cluster in {layout.root} (run `pvesim up`)")
    return ClusterInfo.from_json(layout.info_file.read_text())


def _versions(nodes: list[str], pve_versions: dict[str, str] | str | None) -> dict[str, str]:
    if pve_versions is None:
        return {}
    if isinstance(pve_versions, str):
        pve_versions = {node: pve_versions for node in nodes}
    for node, version in pve_versions.items():
        if node not in nodes:
            raise PvesimError(f"--pve-version: no node {node!r} (nodes: {', '.join(nodes)})")
        if version not in PVE_VERSIONS:
            raise PvesimError(
                f"--pve-version: unsupported version {version!r} (supported: {', '.join(PVE_VERSIONS)})"
            )
    return dict(pve_versions)


def _prepare_tree(layout: Layout, nodes: list[str]) -> None:
    for path in (layout.bin_dir, layout.ssh_dir, layout.run_dir, layout.locks_dir):
        path.mkdir(parents=True, exist_ok=True)
    for mountpoint in ("qemu-server", "local", "lxc"):
        (layout.pve_dir / mountpoint).mkdir(parents=True, exist_ok=True)
    for node in nodes:
        for sub in ("qemu-server", "lxc"):
            (layout.pve_dir / "nodes" / node / sub).mkdir(parents=True, exist_ok=True)
        for path in (layout.lock_dir(node), layout.lvm_dir(node)):
            path.mkdir(parents=True, exist_ok=True)
        for sub in VZ_DIRS:
            (layout.vz_dir(node) / sub).mkdir(parents=True, exist_ok=True)
    storage_cfg = layout.pve_dir / "storage.cfg"
    if not storage_cfg.exists():
        storage_cfg.write_text(DEFAULT_STORAGE_CFG)
    for mountpoint in sshd.MOUNTPOINTS:
        Path(mountpoint).mkdir(parents=True, exist_ok=True)


def up(
    state_dir: str | os.PathLike[str],
    nodes: int = 2,
    latency: float = 0.0,
    faults_spec: str | None = None,
    pve_versions: dict[str, str] | str | None = None,
    settings: dict[str, Any] | None = None,
) -> ClusterInfo:
    """Create (or restart) the cluster in `state_dir` and start one sshd per node."""
    problems = sshd.check_host()
    if problems:
        raise PvesimError("; ".join(problems))
    layout = Layout(Path(state_dir).resolve())
    layout.root.mkdir(parents=True, exist_ok=True)
    if layout.cluster_file.exists():
        cluster = layout.read_cluster()
        running = [n for n in cluster["nodes"] if sshd.pid_of(layout, n) is not None]
        if running:
            raise PvesimError(
                f"cluster in {layout.root} is already up (nodes {', '.join(running)}); run `pvesim down`"
            )
        names = list(cluster["nodes"])
    else:
        if nodes < 1:
            raise PvesimError("--nodes must be at least 1")
        names = [f"pve{i}" for i in range(1, nodes + 1)]
        cluster = {"nodes": names, "defaults": {}, "node_settings": {}}
    rules = faults.parse_spec(faults_spec) if faults_spec else []
    defaults = dict(cluster.get("defaults", {}))
    if latency:
        defaults["latency"] = latency
    for key, value in (settings or {}).items():
        if key not in SETTING_NAMES:
            raise PvesimError(f"unknown setting {key!r} (known: {', '.join(SETTING_NAMES)})")
        defaults[key] = value
    Settings.from_dict(defaults)
    cluster["defaults"] = defaults
    node_settings: dict[str, dict[str, Any]] = cluster.setdefault("node_settings", {})
    for node, version in _versions(names, pve_versions).items():
        node_settings.setdefault(node, {})["pve_version"] = version

    _prepare_tree(layout, names)
    layout.write_cluster(cluster)
    VmStore(layout, names[0], names).write_vmlist()
    sshd.write_shims(layout)
    client_key = layout.ssh_dir / "id_ed25519"
    sshd.keygen(client_key, "pvesim-client")
    (layout.ssh_dir / "authorized_keys").write_text((layout.ssh_dir / "id_ed25519.pub").read_text())
    client_key.chmod(0o600)

    previous: dict[str, int] = {}
    if layout.info_file.exists():
        previous = {n.name: n.port for n in ClusterInfo.from_json(layout.info_file.read_text()).nodes}
    known_hosts = layout.ssh_dir / "known_hosts"
    user = sshd.login_user()
    ports: dict[str, int] = {}
    try:
        for node in names:
            sshd.keygen(layout.node_dir(node) / "ssh_host_ed25519_key", f"root@{node}")
            ports[node] = _start_node(layout, node, previous.get(node))
        infos = [NodeInfo(n, "127.0.0.1", ports[n], user, str(client_key), str(known_hosts)) for n in names]
        known_hosts.write_text("".join(sshd.known_hosts_line(layout, n, ports[n]) for n in names))
        result = ClusterInfo(infos, str(layout.root))
        layout.info_file.write_text(result.to_json() + "\n")
        if rules:
            add_faults(layout.root, rules)
    except BaseException:
        down(layout.root)
        raise
    return result


def _start_node(layout: Layout, node: str, wanted: int | None, attempts: int = 5) -> int:
    """Start the node's sshd on its previous port if free, else on a free one (retrying lost races)."""
    port = wanted if wanted and not sshd.port_open(wanted) else sshd.free_port()
    if faults.load(layout, node).down:
        return port  # stays down until its fault is cleared
    for attempt in range(attempts):
        try:
            sshd.start(layout, node, port)
            return port
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            port = sshd.free_port()
    raise AssertionError("unreachable")


def down(state_dir: str | os.PathLike[str]) -> None:
    """Stop every node's sshd and its sessions. Idempotent; keeps the state folder."""
    layout = Layout(Path(state_dir).resolve())
    if not layout.cluster_file.exists():
        return
    for node in layout.nodes():
        sshd.stop(layout, node)


def reset(state_dir: str | os.PathLike[str]) -> None:
    """Forget every VM, volume, fault and call log; nodes that were down come back. Daemons keep running."""
    layout = Layout(Path(state_dir).resolve())
    names = layout.nodes()
    sshd.kill_tools(layout)
    for node in names:
        if faults.load(layout, node).frozen:
            set_node_frozen(layout.root, node, False)
        if faults.load(layout, node).down:
            set_node_down(layout.root, node, False)
        faults.clear(layout, node)
        for conf in layout.conf_dir(node).glob("*.conf"):
            conf.unlink()
        for sub in (layout.lvm_dir(node), layout.vz_dir(node)):
            shutil.rmtree(sub, ignore_errors=True)
    for state in layout.run_dir.glob("*.json"):
        state.unlink()
    cfg = layout.pve_dir / "storage.cfg"
    cfg.write_text(DEFAULT_STORAGE_CFG)
    _prepare_tree(layout, names)
    VmStore(layout, names[0], names).write_vmlist()
    calllog.clear(layout.root)


def set_node_down(state_dir: str | os.PathLike[str], node: str, is_down: bool) -> None:
    """Make a node refuse SSH connections (sshd and sessions stopped) or bring it back on the same port."""
    layout = Layout(Path(state_dir).resolve())
    if node not in layout.nodes():
        raise PvesimError(f"no node {node!r}")
    if is_down:
        if not faults.load(layout, node).down:
            faults.add(layout, node, [faults.Rule(action="down")])
        sshd.stop(layout, node)
    else:
        faults.clear(layout, node, action="down")
        if sshd.pid_of(layout, node) is None:
            sshd.start(layout, node, info(layout.root).node(node).port)


def set_node_frozen(state_dir: str | os.PathLike[str], node: str, is_frozen: bool) -> None:
    """Freeze a node (its sshd and sessions SIGSTOPped: connections hang, nothing is refused) or thaw it."""
    layout = Layout(Path(state_dir).resolve())
    if node not in layout.nodes():
        raise PvesimError(f"no node {node!r}")
    if is_frozen:
        if not faults.load(layout, node).frozen:
            faults.add(layout, node, [faults.Rule(action="freeze")])
    else:
        faults.clear(layout, node, action="freeze")
    sshd.freeze(layout, node, is_frozen)


def add_faults(
    state_dir: str | os.PathLike[str], spec: str | list[faults.Rule], node: str | None = None
) -> list[faults.Rule]:
    """Add fault rules (a SPEC string, see pvesim.faults) to `node` or to the nodes the rules name (default all)."""
    layout = Layout(Path(state_dir).resolve())
    names = layout.nodes()
    rules = faults.parse_spec(spec) if isinstance(spec, str) else spec
    added: list[faults.Rule] = []
    for rule in rules:
        targets = [node] if node else [rule.node] if rule.node else names
        for target in targets:
            if target not in names:
                raise PvesimError(f"fault rule names unknown node {target!r}")
            if rule.action == "down":
                set_node_down(layout.root, target, True)
            elif rule.action == "freeze":
                set_node_frozen(layout.root, target, True)
            else:
                added += faults.add(layout, target, [rule])
    return added


def clear_faults(state_dir: str | os.PathLike[str], node: str | None = None) -> None:
    """Remove fault rules (of `node`, or all); nodes that were down or frozen come back."""
    layout = Layout(Path(state_dir).resolve())
    for name in [node] if node else layout.nodes():
        if faults.load(layout, name).frozen:
            set_node_frozen(layout.root, name, False)
        if faults.load(layout, name).down:
            set_node_down(layout.root, name, False)
        faults.clear(layout, name)


def list_faults(state_dir: str | os.PathLike[str]) -> dict[str, list[faults.Rule]]:
    layout = Layout(Path(state_dir).resolve())
    return {node: faults.load(layout, node).rules for node in layout.nodes()}


def tune(state_dir: str | os.PathLike[str], node: str | None = None, **values: Any) -> None:
    """Change settings (see pvesim.layout.Settings) of one node or the cluster defaults while it runs."""
    layout = Layout(Path(state_dir).resolve())
    cluster = layout.read_cluster()
    for key in values:
        if key not in SETTING_NAMES:
            raise PvesimError(f"unknown setting {key!r} (known: {', '.join(SETTING_NAMES)})")
    if "pve_version" in values and values["pve_version"] not in PVE_VERSIONS:
        raise PvesimError(f"unsupported PVE version {values['pve_version']!r}")
    if node is None:
        cluster.setdefault("defaults", {}).update(values)
    else:
        if node not in cluster["nodes"]:
            raise PvesimError(f"no node {node!r}")
        cluster.setdefault("node_settings", {}).setdefault(node, {}).update(values)
    layout.write_cluster(cluster)
