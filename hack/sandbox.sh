#!/usr/bin/env bash
# The main command: set up the machine if needed, then run the local sandbox until Ctrl-C — simulated Proxmox nodes
# behind real sshd, a real Kubernetes control plane, proxnix operator, the webhook sidecar and a git server holding the
# example fleet (operator/proxnix_testbed/example_fleet) that a GitRepo follows — and print how to change a VM by
# `git push`. Extra arguments go to `python -m proxnix_testbed.sandbox` (--nodes 3, --latency 0.5, --exit-when-ready,
# --no-demo, --dir D).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
exec .venv/bin/python -m proxnix_testbed.sandbox "$@"
