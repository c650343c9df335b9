#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for proxnix development: system packages, then a venv with the project.
# Idempotent: re-running it only installs what is missing. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

# One list per purpose, shared with the Containerfile (runtime.txt): a package name per line, `#` starts a comment.
mapfile -t APT_PACKAGES < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' hack/packages/runtime.txt hack/packages/testbed.txt \
  | tr -d '[:blank:]')

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nix, single-user as root: the store must exist and be writable. The tests and the sandbox do not rewrite the
# machine's nix.conf; they pass their settings through NIX_CONFIG (operator/proxnix_testbed/nixconf.py).
if [ "$(id -u)" -eq 0 ] && [ ! -d /nix/var/nix/db ]; then
  mkdir -p /nix/store /nix/var/nix
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: ready (.venv/bin/proxnix, .venv/bin/pvesim)"
