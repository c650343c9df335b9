# A stand-in for a NixOS system with a disk image: `config.system.build.qcow2` is a derivation whose output holds a
# qcow2 file. Here the file is a tiny real qcow2 made by the host's qemu-img; the image's name and version are
# written into the disk, so a new version is a new image (a new store path). Needs nix without a build sandbox (the
# builder runs /bin/sh and /usr/bin/qemu-img), as the proxnix sandbox runs it.
{ name, version }:
{
  config.system.build.qcow2 = derivation {
    name = "${name}-image-${version}";
    system = "x86_64-linux";
    inherit version;
    image = name;
    builder = "/bin/sh";
    args = [
      "-c"
      ''
        export PATH=/usr/bin:/bin
        mkdir -p "$out"
        printf 'proxnix example image %s version %s\n' "$image" "$version" > disk.raw
        truncate -s 1M disk.raw
        qemu-img convert -q -f raw -O qcow2 disk.raw "$out/nixos.qcow2"
      ''
    ];
  };
}
