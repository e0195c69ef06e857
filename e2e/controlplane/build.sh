#!/usr/bin/env bash
# Builds the control plane used by every integration test, the demo and the
# benchmarks: kube-apiserver, etcd and kubectl from the Go module in go/, helm
# from the module in helm/. Binaries are cached per machine under a key made of
# both go.sum files and the Go version, so a machine builds them once.
#   build.sh               build if missing, print the binary directory
#   build.sh --print-dir   print the directory without building (exit 1 if absent)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${KUBEXEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubexen}

if ! command -v go >/dev/null 2>&1; then
  echo "controlplane: Go is needed to build kube-apiserver; installing Debian's golang (its toolchain fetches the one go.mod asks for)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >&2
fi
# Older Go downloads the toolchain go.mod names from the module proxy.
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
export GOFLAGS="${GOFLAGS:-} -mod=mod"

key=$( (cat "$0" "$here/go/go.sum" "$here/go/go.mod" "$here/go/cmd/etcd/main.go" "$here/helm/go.sum" "$here/helm/go.mod"; cd "$here/go" && go env GOVERSION) | sha256sum | cut -c1-16)
bin="$cache_root/controlplane-$key"

if [ "${1:-}" = "--print-dir" ]; then
  [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ] && [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ] || exit 1
  echo "$bin"; exit 0
fi

if [ ! -x "$bin/helm" ]; then
  tmp="$bin.partial"
  rm -rf "$tmp" && mkdir -p "$tmp"
  start=$(date +%s)
  echo "controlplane: building kube-apiserver, etcd, kubectl and helm into $bin (first time on this machine: several minutes)" >&2
  # Stamp the release into the binaries, as Kubernetes' and Helm's own builds do.
  k8s=$(cd "$here/go" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
  minor=$(echo "$k8s" | cut -d. -f2)
  helmv=$(cd "$here/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
  v=k8s.io/component-base/version
  (cd "$here/go" && go build -trimpath -ldflags="-s -w -X $v.gitVersion=$k8s -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" -o "$tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl ./cmd/etcd) >&2
  (cd "$here/helm" && go build -trimpath -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$helmv" -o "$tmp/" helm.sh/helm/v4/cmd/helm) >&2
  rm -rf "$bin" && mv "$tmp" "$bin"
  echo "controlplane: built in $(( $(date +%s) - start )) s" >&2
fi
echo "$bin"
