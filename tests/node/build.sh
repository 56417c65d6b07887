#!/usr/bin/env bash
# Builds the test node's programs into bin/, unless they are already there for these sources:
# the kubelet, kube-proxy and kube-scheduler from the Kubernetes module pinned in go.mod (the
# control plane's version), the test CSI driver from cmd/, and, at the versions below, from the
# Go module proxy: the CSI external-provisioner, kube-router (its NetworkPolicy firewall),
# CoreDNS, crane (whose registry holds the images built here), Helm (which installs the chart),
# versitygw (an S3 server, Apache-2.0, for the Dataset import) and rclone (the importer).
set -euo pipefail
cd "$(dirname "$0")"

EXTERNAL_PROVISIONER=github.com/kubernetes-csi/external-provisioner/v6@v6.4.0
KUBE_ROUTER=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v2.1.0
CRANE=github.com/google/go-containerregistry/cmd/crane@v0.22.1
HELM=helm.sh/helm/v4/cmd/helm@v4.3.1
VERSITYGW=github.com/versity/versitygw/cmd/versitygw@v1.8.0
RCLONE=github.com/rclone/rclone@v1.76.0
COREDNS=github.com/coredns/coredns@v1.15.0

KUBERNETES_VERSION=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' go.mod)
stamp="bin/.built-from-$( (cat go.mod go.sum "$0"; find cmd -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi

echo "building the test node ($KUBERNETES_VERSION) from the Go module proxy" >&2
rm -rf bin && mkdir -p bin
version_pkg=k8s.io/component-base/version
minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
ldflags="-s -w -X $version_pkg.gitVersion=$KUBERNETES_VERSION -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$minor"
go build -trimpath -ldflags "$ldflags" -o bin/ ./cmd/...
for module in "$KUBE_ROUTER" "$COREDNS" "$CRANE" "$HELM" "$VERSITYGW" "$RCLONE"; do
  GOBIN="$PWD/bin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$module"
done
# The provisioner's go.mod has replace directives, which `go install module@version` refuses:
# it is built as the main module, in its download directory.
provisioner_dir=$(go mod download -json "$EXTERNAL_PROVISIONER" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
(cd "$provisioner_dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OLDPWD/bin/csi-provisioner" ./cmd/csi-provisioner)
touch "$stamp"
