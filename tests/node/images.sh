#!/usr/bin/env bash
# Builds the test node's images with buildah (no daemon, no registry to pull from) and pushes
# them to the node's registry. Usage: images.sh REGISTRY STATE. Writes each image's reference,
# by digest under registry.hygie.test, to STATE/<image>.ref:
#   pause    the pod sandbox, built from the Kubernetes module's pause.c
#   probe    busybox: serves HTTP on port 8888 as a notebook would, with sh, nc, nslookup, id...
#   coredns  the CoreDNS binary built by build.sh
#   desktop  a workspace's desktop: the probe's tool port and TigerVNC's Xvnc from this
#            machine's Debian packages (with the libraries and keyboard data it loads),
#            started by desktop/start
#   rclone   the transfer image (dataset import, export staging, review and release):
#            busybox and rclone, trusting the test CA (STATE/s3-ca.crt)
#   hygie    the operator, from the project's Dockerfile, around the static binary built here
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
REGISTRY=$1
STATE=$2
export BUILDAH_ISOLATION=chroot
buildah_() { buildah --root "$STATE/buildah" --runroot /run/hygie-node/buildah --storage-driver vfs "$@"; }

# image NAME ROOTFS CONFIG-ARGS...: an image of ROOTFS's files, configured, pushed by digest.
image() {
  local name=$1 rootfs=$2; shift 2
  local container
  container=$(buildah_ from scratch)
  buildah_ copy --quiet "$container" "$rootfs" / >/dev/null
  buildah_ config "$@" "$container"
  buildah_ commit --quiet --rm "$container" "hygie-test/$name" >/dev/null
  push "$name"
}

# push NAME: pushes hygie-test/NAME and records its reference by digest.
push() {
  local name=$1
  buildah_ push --quiet --tls-verify=false --digestfile "$STATE/$name.digest" \
    "hygie-test/$name" "docker://$REGISTRY/$name:test"
  echo "registry.hygie.test/$name@$(cat "$STATE/$name.digest")" > "$STATE/$name.ref"
  echo "image $(cat "$STATE/$name.ref")"
}

work="$STATE/images"
rm -rf "$work" && mkdir -p "$work"

mkdir -p "$work/pause"
pause_c="$(cd "$HERE" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
gcc -Os -static -o "$work/pause/pause" "$pause_c"
image pause "$work/pause" --entrypoint '["/pause"]' --user 65535:65535

mkdir -p "$work/probe/bin" "$work/probe/www" "$work/probe/home/researcher"
cp "$(command -v busybox)" "$work/probe/bin/busybox"
for applet in sh nc nslookup id touch sleep printf cat ls mkdir env sha256sum httpd ln; do
  ln -s busybox "$work/probe/bin/$applet"
done
echo probe > "$work/probe/www/index.html"
image probe "$work/probe" --cmd '["/bin/httpd", "-f", "-p", "8888", "-h", "/www"]' \
  --env PATH=/bin --user 10001:10001 --port 8888

mkdir -p "$work/desktop/bin" "$work/desktop/usr/bin" "$work/desktop/usr/share/X11" \
  "$work/desktop/www" "$work/desktop/home/researcher"
cp "$(command -v busybox)" "$work/desktop/bin/busybox"
for applet in sh httpd sleep cat; do
  ln -s busybox "$work/desktop/bin/$applet"
done
echo desktop > "$work/desktop/www/index.html"
cp "$HERE/desktop/start" "$work/desktop/bin/start"
x_programs=(/usr/bin/Xvnc /usr/bin/vncpasswd /usr/bin/xsetroot /usr/bin/xkbcomp)
cp "${x_programs[@]}" "$work/desktop/usr/bin/"
for library in $(ldd "${x_programs[@]}" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u); do
  mkdir -p "$work/desktop$(dirname "$library")"
  cp -L "$library" "$work/desktop$library"
done
cp -r /usr/share/X11/xkb "$work/desktop/usr/share/X11/xkb"
image desktop "$work/desktop" --cmd '["/bin/start"]' --env PATH=/bin:/usr/bin \
  --user 10001:10001 --port 8888 --port 5900

mkdir -p "$work/coredns"
cp "$HERE/bin/coredns" "$work/coredns/coredns"
image coredns "$work/coredns" --entrypoint '["/coredns"]'

mkdir -p "$work/rclone/bin" "$work/rclone/etc/ssl/certs"
cp "$(command -v busybox)" "$work/rclone/bin/busybox"
for applet in sh cat sed find sort xargs sha256sum cut printf realpath stat cp mkdir dirname sleep ls; do
  ln -s busybox "$work/rclone/bin/$applet"
done
cp "$HERE/bin/rclone" "$work/rclone/bin/rclone"
cp "$STATE/s3-ca.crt" "$work/rclone/etc/ssl/certs/ca-certificates.crt"
image rclone "$work/rclone" --env PATH=/bin --user 10001:10001

# The Dockerfile's own stages, with the binary built here and no base to pull.
(cd "$ROOT" && cargo build --quiet --release --locked -p hygie --target x86_64-unknown-linux-musl)
bash "$ROOT/gateway/build.sh" "$ROOT/target/gateway-web"
buildah_ bud --quiet --layers=false --build-arg BINARY=prebuilt --build-arg RUNTIME_IMAGE=scratch \
  -f "$ROOT/Dockerfile" -t hygie-test/hygie "$ROOT" >/dev/null
push hygie
