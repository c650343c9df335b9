"""Pure Proxmox knowledge (no I/O): how to say things to a node and how to read what it says.

- `shell` — quoting argv for the remote shell, defensive value checks;
- `commands` — argv builders for every qm/pvesh call; `definition` — a VM spec with node defaults resolved;
- `ownership` — the marker proxnix writes on its VMs and the test for "ours, for which object";
- parsers: `qm_list`, `vm_config` (qm config, raw .conf files, pvesh config JSON), `qm_status`, `qm_pending`,
  `pvesh`, `guest_agent`, `disk_import`; shared helpers in `parsing` and `propstring`;
- `dialect` — the version rules of a node's qm (one object per PVE version);
- `inventory` — the one-call-per-node inventory script and its parser; `image_cache` — upload scripts;
- `errors` — the exception hierarchy; `classify` — error texts → exceptions (transient vs permanent).
"""
