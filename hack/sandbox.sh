#!/usr/bin/env bash
# The main command: set up the machine if needed, then run the local sandbox — simulated Proxmox nodes behind real
# sshd, the test Kubernetes API, and proxnix operator — with two demo VMs, until Ctrl-C.
# Extra arguments go to `python -m proxnix_testbed.sandbox` (e.g. --nodes 3, --latency 0.5, --exit-when-ready).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
exec .venv/bin/python -m proxnix_testbed.sandbox "$@"
