"""proxmox layer of proxnix."""
