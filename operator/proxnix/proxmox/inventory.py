"""The batched inventory: one shell script, run in ONE SSH exec per node per sync, and the parser of its output.

The script runs a single `pvesh get /cluster/resources --type vm` (one Perl start-up: every guest of the cluster with
node, status, tags, lock) and then, with plain `cat`, every config file of the local node
(`/etc/pve/qemu-server/*.conf`: shape, tags, protection, lock, `[PENDING]`, the ownership marker), plus a pidfile
check per VM (`/var/run/qemu-server/<id>.pid` naming a live QEMU: the node's own test for "running", which does not
lag like pvestatd's broadcast). Sections are delimited by lines carrying a per-call random nonce, which no config
file line can contain (config lines start with `#`, `[` or a key).

The original tool's method, `qm list` then `qm config` per VM, costs one Perl start-up (~1 s) per VM.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from proxnix.api.proxmoxvm import ObservedVM
from proxnix.proxmox.errors import ParseError
from proxnix.proxmox.ownership import Ownership, config_ownership
from proxnix.proxmox.parsing import fail, output_lines
from proxnix.proxmox.pvesh import CLUSTER_RESOURCES, ClusterGuest, parse_cluster_resources
from proxnix.proxmox.shell import check_pattern, check_remote_path
from proxnix.proxmox.vm_config import VmConfig, parse_vm_config_file

COMMAND = "inventory"
CONF_DIR = "/etc/pve/qemu-server"
PID_DIR = "/var/run/qemu-server"
NONCE_PATTERN = r"^[0-9a-f]{16,64}$"


def new_nonce() -> str:
    return secrets.token_hex(8)


def inventory_script(nonce: str, *, conf_dir: str = CONF_DIR, pid_dir: str = PID_DIR) -> str:
    """The POSIX sh script (run with `sh -c`). Its stdout is parsed by `parse_inventory`; pvesh's stderr is kept apart.

    `conf_dir` and `pid_dir` exist for tests that run the script against a fake tree.
    """
    n = check_pattern(nonce, NONCE_PATTERN, "nonce", max_length=64)
    conf_dir = shlex.quote(check_remote_path(conf_dir))
    pid_dir = shlex.quote(check_remote_path(pid_dir))
    return f"""\
m='@@{n}'
printf '%s begin 1\\n' "$m"
printf '%s resources\\n' "$m"
{CLUSTER_RESOURCES}
rc=$?
printf '\\n%s resources-rc %s\\n' "$m" "$rc"
if [ -d {pid_dir} ]; then piddir=1; else piddir=0; fi
for f in {conf_dir}/*.conf; do
  [ -e "$f" ] || continue
  id=${{f##*/}}; id=${{id%.conf}}
  case "$id" in *[!0-9]*|'') continue;; esac
  printf '%s conf %s\\n' "$m" "$id"
  if ! cat -- "$f"; then printf '\\n%s unreadable %s\\n' "$m" "$id"; fi
  st=unknown
  if [ "$piddir" = 1 ]; then
    st=stopped
    pf={pid_dir}/$id.pid
    if [ -r "$pf" ] && read -r pid < "$pf" && [ -n "$pid" ] && grep -qF -- "$pf" "/proc/$pid/cmdline" 2>/dev/null; then
      st=running
    fi
  fi
  printf '\\n%s pid %s %s\\n' "$m" "$id" "$st"
done
printf '%s end\\n' "$m"
"""


@dataclass(frozen=True)
class VmObservation:
    """Everything the operator reads about one VM of the node, from one inventory call.

    `power_state` comes from the node's pidfile check when available (`power_source="pid"`), else from pvestatd's
    broadcast (`"resources"`, may lag ~10 s and shows paused VMs as running), else `unknown`.
    """

    vmid: int
    node: str
    config: VmConfig | None
    power_state: str
    power_source: str
    resource: ClusterGuest | None = None
    ownership: Ownership = field(default_factory=Ownership)
    error: str = ""

    @property
    def name(self) -> str:
        return self.config.name if self.config else (self.resource.name if self.resource else "")

    @property
    def tags(self) -> list[str]:
        return self.config.tags if self.config else list(self.resource.tags if self.resource else ())

    @property
    def lock(self) -> str:
        return self.config.lock if self.config else (self.resource.lock if self.resource else "")

    @property
    def protection(self) -> bool:
        return self.config.protection if self.config else False

    @property
    def pending_keys(self) -> list[str]:
        return self.config.pending_keys if self.config else []

    @property
    def disk_gib(self) -> float | None:
        size = self.config.disk_size_bytes() if self.config else None
        return size / 1024**3 if size is not None else None

    def to_observed(self) -> ObservedVM:
        """The API's status block for this VM."""
        c = self.config
        return ObservedVM(
            power_state=self.power_state,
            cores=c.cores() if c else None,
            sockets=c.sockets() if c else None,
            memory_mib=c.memory_mib() if c else None,
            disk_gib=self.disk_gib,
            tags=self.tags,
            protection=self.protection,
            on_boot=c.onboot if c else None,
            lock=self.lock,
            pending=self.pending_keys,
        )


@dataclass(frozen=True)
class NodeInventory:
    """One node's VMs (`vms`, from its config files) and every guest of the cluster (`cluster`, from pvesh)."""

    node: str
    vms: Mapping[int, VmObservation]
    cluster: Mapping[int, ClusterGuest]
    resources_error: str = ""

    def owned_by(self, uid: str) -> VmObservation | None:
        return next((vm for vm in self.vms.values() if vm.ownership.owned_by(uid)), None)

    def vmid_holder(self, vmid: int) -> str | None:
        """The node holding `vmid` (this node if its config is here), or None when the VMID is free."""
        if vmid in self.vms:
            return self.node
        guest = self.cluster.get(vmid)
        return guest.node if guest else None


def parse_inventory(stdout: str, nonce: str, *, node: str, stderr: str = "") -> NodeInventory:
    """Parse the script's stdout. A broken frame raises ParseError; a bad config file only marks that VM."""
    marker = f"@@{check_pattern(nonce, NONCE_PATTERN, 'nonce', max_length=64)} "
    lines = output_lines(stdout)
    if not lines or lines[0] != marker + "begin 1":
        fail(COMMAND, "missing the begin marker (did the shell run the script?)", lines[0] if lines else "")
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    ended = False
    for line in lines[1:]:
        if line.startswith(marker):
            header = line[len(marker) :]
            if header == "end":
                ended = True
                break
            current = []
            blocks.append((header, current))
        elif current is None:
            fail(COMMAND, "output before the first section", line)
        else:
            current.append(line)
    if not ended:
        fail(COMMAND, "missing the end marker (output truncated?)", lines[-1] if lines else "")

    cluster: dict[int, ClusterGuest] = {}
    resources_error = ""
    configs: dict[int, tuple[VmConfig | None, str]] = {}
    pid_states: dict[int, str] = {}
    vanished: set[int] = set()
    resources_text = ""
    for header, body in blocks:
        kind, _, arg = header.partition(" ")
        if kind == "resources":
            resources_text = "\n".join(body)
        elif kind == "resources-rc":
            if arg.strip() != "0":
                resources_error = (stderr.strip() or f"pvesh exited {arg.strip()}")[:500]
        elif kind in ("conf", "unreadable", "pid"):
            vmid_text, _, rest = arg.partition(" ")
            if not vmid_text.isdigit():
                fail(COMMAND, "bad VMID in section header", header)
            vmid = int(vmid_text)
            if kind == "conf":
                path = f"{CONF_DIR}/{vmid}.conf"
                raw = "\n".join(body).rstrip("\n") + "\n"
                try:
                    configs[vmid] = (parse_vm_config_file(raw, path=path, vmid=vmid), "")
                except ParseError as exc:
                    configs[vmid] = (None, str(exc))
            elif kind == "unreadable":
                vanished.add(vmid)  # deleted between the glob and the cat: not on the node any more
            else:
                pid_states[vmid] = rest.strip() or "unknown"
        else:
            fail(COMMAND, "unknown section", header)
    if not resources_error:
        try:
            cluster = {g.vmid: g for g in parse_cluster_resources(resources_text)}
        except ParseError as exc:
            resources_error = str(exc)

    vms: dict[int, VmObservation] = {}
    for vmid, (config, error) in sorted(configs.items()):
        if vmid in vanished:
            continue
        resource = cluster.get(vmid)
        pid_state = pid_states.get(vmid, "unknown")
        if pid_state in ("running", "stopped"):
            power, source = pid_state, "pid"
            if power == "running" and resource is not None and resource.status == "paused":
                power = "paused"
        elif resource is not None and resource.node == node and resource.status != "unknown":
            power, source = resource.status, "resources"
        else:
            power, source = "unknown", "none"
        vms[vmid] = VmObservation(
            vmid=vmid,
            node=node,
            config=config,
            power_state=power,
            power_source=source,
            resource=resource,
            ownership=config_ownership(config) if config else Ownership(),
            error=error,
        )
    return NodeInventory(node=node, vms=vms, cluster=cluster, resources_error=resources_error)
