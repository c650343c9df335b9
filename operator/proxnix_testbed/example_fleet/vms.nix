# The VMs, one attribute each, in the format `nix eval .#proxnix --json` gives proxnix: name, vm_id, image_type
# (a nixosConfigurations attribute), cores, sockets, memory_mb, disk_gb, storage_location, cloud_init ("None" or
# { StorageReference = "<storage>"; }), protected, network_bridge, scsi_hw, disk_slot; plus optional snake_case
# extensions (here node and tags; also run_strategy, deletion_policy, on_boot, net_model, cloud_init_user,
# ssh_authorized_keys, ip_config, ...).
#
# Try: change web01's memory_mb, commit and `git push`; `kubectl get proxmoxvms -w` shows web01 follow, in place.
{
  web01 = {
    name = "web01"; vm_id = 100; image_type = "web"; node = "pve1";
    cores = 2; sockets = 1; memory_mb = 2048; disk_gb = 8;
    storage_location = "local-lvm"; cloud_init = "None"; protected = false;
    network_bridge = "vmbr0"; scsi_hw = "virtio-scsi-pci"; disk_slot = "scsi0";
    tags = [ "web" ];
  };
  web02 = {
    name = "web02"; vm_id = 101; image_type = "web"; node = "pve2";
    cores = 2; sockets = 1; memory_mb = 1024; disk_gb = 8;
    storage_location = "local-lvm"; cloud_init = "None"; protected = false;
    network_bridge = "vmbr0"; scsi_hw = "virtio-scsi-pci"; disk_slot = "scsi0";
    tags = [ "web" ];
  };
  db01 = {
    name = "db01"; vm_id = 110; image_type = "db"; node = "pve2";
    cores = 4; sockets = 1; memory_mb = 4096; disk_gb = 20;
    storage_location = "local-lvm"; cloud_init = { StorageReference = "local-lvm"; }; protected = true;
    network_bridge = "vmbr0"; scsi_hw = "virtio-scsi-single"; disk_slot = "scsi0";
    tags = [ "db" ];
  };
}
