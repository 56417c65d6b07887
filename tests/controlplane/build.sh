#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from the published Go modules pinned
# in go.mod into bin/, unless they are already there for this go.mod.
set -euo pipefail
cd "$(dirname "$0")"

KUBERNETES_VERSION=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' go.mod)
stamp="bin/.built-from-$(sha256sum go.mod go.sum | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ -x bin/etcd ] && [ -x bin/kube-apiserver ] && [ -x bin/kube-controller-manager ]; then
  exit 0
fi

echo "building the test control plane ($KUBERNETES_VERSION) from the Go module proxy" >&2
rm -rf bin && mkdir -p bin
version_pkg=k8s.io/component-base/version
minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
ldflags="-s -w -X $version_pkg.gitVersion=$KUBERNETES_VERSION -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$minor"
go build -trimpath -ldflags "$ldflags" -o bin/ ./cmd/...
touch "$stamp"
