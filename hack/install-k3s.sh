#!/usr/bin/env bash
# Install k3s on a Debian (or Debian-based Proxmox) VM and deploy proxnix on it. Idempotent: every step checks
# whether it is done already, so re-running it after a failure or for an upgrade is safe.
#
#   sudo bash hack/install-k3s.sh [--dry-run] [--k3s-version v1.36.2+k3s1] [--overlay DIR] [--image REF]
#
#   --dry-run       print each step and the commands it would run; change nothing (no root needed)
#   --k3s-version   the k3s release to install (default: the pinned one below)
#   --overlay DIR   a kustomize folder to apply instead of manifests/ (e.g. your copy of manifests/examples)
#   --image REF     the proxnix image to run (default: the one manifests/base names)
set -euo pipefail

K3S_VERSION="v1.36.2+k3s1"
REPO_DIR="$(cd "$(dirname "$0")/.." && pwd)"
OVERLAY="$REPO_DIR/manifests"
IMAGE=""
DRY_RUN=0
KUBECONFIG_PATH=/etc/rancher/k3s/k3s.yaml

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --k3s-version) K3S_VERSION="${2:?--k3s-version needs a value}"; shift ;;
    --overlay) OVERLAY="${2:?--overlay needs a folder}"; shift ;;
    --image) IMAGE="${2:?--image needs a reference}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-k3s: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*"; }
# run CMD...: run it, or in a dry run print it (quoted as a shell would need it) and go on.
run() {
  if ((DRY_RUN)); then
    printf '    would run:'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

if [ ! -f "$OVERLAY/kustomization.yaml" ]; then
  echo "install-k3s: $OVERLAY has no kustomization.yaml" >&2
  exit 2
fi
if ((!DRY_RUN)) && [ "$(id -u)" -ne 0 ]; then
  echo "install-k3s: run as root (k3s installs a system service), or use --dry-run" >&2
  exit 2
fi

step "1/5 Check the machine: Debian-based Linux with systemd"
if [ -r /etc/os-release ] && grep -qiE '^(ID|ID_LIKE)=.*debian' /etc/os-release; then
  echo "    ok: $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')"
else
  echo "    warning: not a Debian-based system; k3s may still work"
fi

step "2/5 Install k3s $K3S_VERSION (skipped when this version already runs)"
if command -v k3s >/dev/null 2>&1 && k3s --version 2>/dev/null | grep -qF "$K3S_VERSION"; then
  echo "    k3s $K3S_VERSION is installed"
else
  echo "    the official installer from https://get.k3s.io, pinned to $K3S_VERSION; Traefik stays on (it serves the webhook Ingress)"
  if ((DRY_RUN)); then
    echo "    would run: curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=$K3S_VERSION sh -s - --write-kubeconfig-mode 0600"
  else
    curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION="$K3S_VERSION" sh -s - --write-kubeconfig-mode 0600
  fi
fi
export KUBECONFIG="$KUBECONFIG_PATH"

step "3/5 Wait until the k3s node is Ready"
run k3s kubectl wait --for=condition=Ready node --all --timeout=180s

step "4/5 Deploy proxnix: kubectl apply -k $OVERLAY"
if [ -n "$IMAGE" ]; then
  echo "    with image $IMAGE"
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  rel=$(realpath --relative-to="$build" "$OVERLAY")
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %s\nimages:\n- name: ghcr.io/proxnix/proxnix\n  newName: %s\n' \
    "$rel" "${IMAGE%:*}" >"$build/kustomization.yaml"
  [ "${IMAGE##*:}" != "$IMAGE" ] && printf '  newTag: %s\n' "${IMAGE##*:}" >>"$build/kustomization.yaml"
  OVERLAY="$build"
  if [ "$DRY_RUN" = 1 ] && command -v kubectl >/dev/null; then
    # show what the overlay really deploys (kustomize renders it; nothing is applied)
    kubectl kustomize "$OVERLAY" | sed -n 's/^ *image: /    would deploy image: /p' | sort -u
  fi
fi
# CRDs first (proxnix's and kopf's peering CRDs): objects of a kind cannot go in the same apply as its CRD.
run k3s kubectl apply --server-side -k "$REPO_DIR/manifests/crds"
run k3s kubectl wait --for=condition=Established crd --all --timeout=60s
run k3s kubectl apply --server-side -k "$OVERLAY"

step "5/5 Wait for the operator pod"
run k3s kubectl -n proxnix-system rollout status statefulset/proxnix --timeout=300s

cat <<NEXT

proxnix is installed. Next:
  - one Secret + ProxmoxNode per Proxmox node (manifests/examples/proxmoxnode.yaml shows how to get the key and host key);
  - a GitRepo for your flake and its webhook Secret (manifests/examples/gitrepo.yaml);
  - point your git server's push webhook at https://<this host>/hook with that secret;
  - watch: KUBECONFIG=$KUBECONFIG_PATH kubectl -n proxnix-system get proxnix
NEXT
