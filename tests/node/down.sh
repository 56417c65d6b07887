#!/usr/bin/env bash
# Stops what up.sh started, by the PIDs it recorded, unmounts what was mounted under its state,
# deletes the interfaces, namespace and iptables chain it made, puts forwarding back as it was,
# removes its state, then stops the control plane. Idempotent: nothing to undo is not an error.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="$HERE/state"
RUN=/run/hygie-node

stop() { # pidfile
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}

# The kubelet first, so that it starts no more containers; then the containers themselves,
# whose shims outlive containerd.
stop "$STATE/kubelet.pid"
if [ -S "$RUN/containerd.sock" ]; then
  for task in $(ctr --address "$RUN/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$RUN/containerd.sock" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1
  done
  sleep 1
fi
for component in csi-provisioner csi-driver kube-router kube-scheduler kube-proxy containerd registry s3 outside-dns outside; do
  stop "$STATE/$component.pid"
done
# Shims and pause processes left behind by containerd: those started from this state only.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $RUN/containerd.sock" 2>/dev/null); do
  kill -KILL "$pid" 2>/dev/null
done

# Mounts under the state and run directories, deepest first.
for dir in "$STATE" "$RUN"; do
  [ -d "$dir" ] || continue
  awk -v prefix="$dir/" 'index($5, prefix) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null
  done
done

# Network: kube-proxy removes its own rules; the rest is removed here.
[ -x "$HERE/bin/kube-proxy" ] && "$HERE/bin/kube-proxy" --cleanup >/dev/null 2>&1
# kube-router's own cleanup (--cleanup-config) crashes on a kernel without IPVS: its rules,
# chains and ipsets, and the kubelet's KUBE-FIREWALL, are removed here by their names.
ours='^(KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-|KUBE-FIREWALL$)'
iptables -S 2>/dev/null | awk -v re="$ours" '$1 == "-A" && $2 !~ re && $0 ~ / -j (KUBE-ROUTER-|KUBE-FIREWALL)/' |
  sed 's/^-A/-D/' | while read -r rule; do eval "iptables $rule"; done
chains=$(iptables -S 2>/dev/null | awk '$1 == "-N" {print $2}' | grep -E "$ours")
for chain in $chains; do iptables -F "$chain"; done
for chain in $chains; do iptables -X "$chain"; done
ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router)' | xargs -r -n1 ipset destroy 2>/dev/null
# The pod sandboxes' network namespaces, which containerd made and the kubelet had no time to
# tear down: those that were not there before up.sh.
if [ -f "$STATE/netns.before" ]; then
  for netns in $(ip netns list | awk '$1 ~ /^cni-/ {print $1}'); do
    grep -qx "$netns" "$STATE/netns.before" || ip netns delete "$netns"
  done
fi
if iptables -S HYGIE-NODE >/dev/null 2>&1; then
  iptables -D FORWARD -j HYGIE-NODE 2>/dev/null
  iptables -F HYGIE-NODE && iptables -X HYGIE-NODE
fi
for link in hygie-node hygie-out hygie-cni0; do
  ip link show "$link" >/dev/null 2>&1 && ip link delete "$link"
done
ip netns list 2>/dev/null | grep -qw hygie-outside && ip netns delete hygie-outside
if [ -f "$STATE/ip_forward.before" ]; then
  sysctl -qw "net.ipv4.ip_forward=$(cat "$STATE/ip_forward.before")"
fi

rm -rf "$STATE" "$RUN"
"$HERE/../controlplane/down.sh"
exit 0
