#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager of the Kubernetes release pinned in hack/kube/go.mod, once per
# machine: the binaries go to ${XDG_CACHE_HOME:-~/.cache}/proxnix/kube/<version>/bin, which later runs reuse as long
# as the inputs (go.mod, go.sum, the main.go files, this script) are unchanged. Prints that directory on stdout.
# Needs Go of the release's minor version (1.36 -> Go 1.26; Go 1.27's encoding/json breaks /openapi/v2): a local Go
# of another minor version makes Go fetch the pinned toolchain from the module proxy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
toolchain=go1.26.8
version=$(sed -nE 's/^[[:space:]]*(require[[:space:]]+)?k8s\.io\/kubernetes (v[0-9.]+)$/\2/p' "$here/go.mod")
[[ $version =~ ^v1\.[0-9]+\.[0-9]+$ ]] || { echo "build.sh: no pinned k8s.io/kubernetes release in go.mod" >&2; exit 1; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/proxnix/kube/$version"
bin="$cache/bin"
stamp=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" "$here"/cmd/*/main.go | sha256sum | cut -c1-16)

fresh() { [[ -x $bin/kube-apiserver && -x $bin/kube-controller-manager && $(cat "$bin/stamp" 2>/dev/null) == "$stamp" ]]; }

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if fresh; then
    echo "$bin"
    exit 0
fi

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { echo "build.sh: Go is needed to build the control plane (go.dev/doc/install)" >&2; exit 1; }
local_go=$(go env GOVERSION 2>/dev/null || true)
if [[ ${local_go%.*} == "${toolchain%.*}" ]]; then
    export GOTOOLCHAIN=local
else
    export GOTOOLCHAIN=$toolchain
fi

minor=${version#v1.}
minor=${minor%%.*}
build_date=$(cd "$here" && go list -m -f '{{.Time.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitMajor=1"
ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"

tmp="$cache/bin.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
echo "build.sh: compiling Kubernetes $version with $(cd "$here" && go env GOVERSION) into $bin (about 5 minutes on 2 cores)" >&2
start=$SECONDS
(cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" ./cmd/kube-apiserver ./cmd/kube-controller-manager)
echo "$stamp" >"$tmp/stamp"
rm -rf "$bin"
mv "$tmp" "$bin"
echo "build.sh: built in $((SECONDS - start)) s" >&2
echo "$bin"
