{
  description = "An example proxnix fleet: three VMs on two Proxmox nodes, running two images";

  # proxnix reads two outputs:
  # - nixosConfigurations.<image_type>.config.system.build.qcow2: the disk image of the VMs of that image_type;
  # - proxnix.vms: the VMs (vms.nix).
  #
  # A real fleet builds real NixOS images from nixpkgs:
  #   inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
  #   outputs = { self, nixpkgs }: {
  #     nixosConfigurations.web = nixpkgs.lib.nixosSystem { system = "x86_64-linux"; modules = [ ./web.nix ]; };
  #     proxnix.vms = import ./vms.nix;
  #   };
  # where ./web.nix sets system.build.qcow2 with nixpkgs' make-disk-image (as nixos-generators' qcow format does),
  # or, on NixOS 25.05+, nothing at all: proxnix then takes config.system.build.images.qemu.
  # This example has no inputs so that it builds offline in seconds: its images are tiny real qcow2 files made by
  # qemu-img (image.nix).
  outputs = { self }:
    let
      image = import ./image.nix;
    in
    {
      nixosConfigurations = {
        # Change a version and push: the VMs running that image are reimaged (protected ones are kept, and reported).
        web = image { name = "web"; version = "1"; };
        db = image { name = "db"; version = "1"; };
      };
      proxnix.vms = import ./vms.nix;
    };
}
