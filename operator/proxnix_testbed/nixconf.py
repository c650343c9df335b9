"""nix settings for the tests and the sandbox, passed through NIX_CONFIG (the machine's nix.conf is not rewritten).

Debian 12's nix-bin (2.8), single-user as root: flakes on, no binary caches (the test flakes use no nixpkgs and
nothing may reach the network), no build sandbox (the test derivations run the host's /bin/sh and qemu-img), and no
build-users group (single-user). The operator itself passes whatever nix configuration it finds through untouched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TEST_SETTINGS = {
    "experimental-features": "nix-command flakes",
    "substituters": "",
    "sandbox": "false",
    "build-users-group": "",
    "warn-dirty": "false",
}


def nix_config() -> str:
    """The NIX_CONFIG value: one `key = value` line per setting."""
    return "".join(f"{key} = {value}\n" for key, value in TEST_SETTINGS.items())


def nix_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for nix commands in tests and the sandbox (NIX_CONFIG set, the rest of `base` kept)."""
    env = dict(os.environ if base is None else base)
    env["NIX_CONFIG"] = nix_config()
    return env
