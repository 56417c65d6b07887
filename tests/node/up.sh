#!/usr/bin/env bash
# Starts the test control plane (tests/controlplane) and a real node beside it on this machine:
# containerd and runc, the standard CNI plugins on a bridge, the kubelet, kube-proxy and
# kube-scheduler, kube-router's NetworkPolicy firewall, CoreDNS, a CSI driver behind the CSI
# external-provisioner, an image registry for the images built here, and "the outside": a
# network namespace with a web server, the address egress allowlists are tested against.
#
# Prints, as its last two lines, the probe image's reference and the admin kubeconfig's path.
# Idempotent: when the node is already up, it only prints them. Needs root.
#
# Addresses (all on this machine, none routed out of it):
#   10.213.0.1       the node and the API server (interface hygie-node)
#   10.214.0.0/24    pods (the bridge hygie-cni0, gateway 10.214.0.1)
#   10.215.0.2       the outside (network namespace hygie-outside): a web server on port 8080,
#                    an S3 server (versitygw) on 7070, with TLS, and a resolver on 53 that logs
#                    every query
#   10.96.0.0/12     Services; cluster DNS at 10.96.0.10
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$HERE/state"
BIN="$HERE/bin"
# Sockets live under /run: a socket path is limited to 108 bytes, a clone's path is not.
RUN=/run/hygie-node
CONTROLPLANE="$ROOT/tests/controlplane"
KUBECONFIG_PATH="$CONTROLPLANE/state/kubeconfig"

NODE_NAME=hygie-node
NODE_IP=10.213.0.1
POD_CIDR=10.214.0.0/24
POD_GATEWAY=10.214.0.1
OUTSIDE_HOST=10.215.0.1
OUTSIDE_IP=10.215.0.2
DNS_IP=10.96.0.10
REGISTRY=127.0.0.1:5000
# The node's region and pool: those of the Scaleway example (fr-par) and the OVHcloud one's
# node selector (nodepool: hds), so that the bundled examples schedule here.
REGION=fr-par

log() { echo "node: $*" >&2; }
alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }
COMPONENTS=(s3 registry containerd kubelet kube-proxy kube-scheduler kube-router csi-driver csi-provisioner)

up_already() {
  for component in "${COMPONENTS[@]}"; do alive "$component" || return 1; done
  [ -f "$STATE/probe.ref" ] && kubectl --kubeconfig "$KUBECONFIG_PATH" get node "$NODE_NAME" >/dev/null 2>&1
}
if up_already; then
  cat "$STATE/probe.ref"
  echo "$KUBECONFIG_PATH"
  exit 0
fi
if [ -d "$STATE" ] || [ -d "$RUN" ]; then
  log "a previous node is half up; stopping it first"
  "$HERE/down.sh" >&2
fi
[ "$(id -u)" = 0 ] || { log "the node needs root (network interfaces, mounts, containers)"; exit 1; }

"$HERE/build.sh" >&2
started=$(date +%s)
mkdir -p "$STATE/pki" "$RUN"
kubectl_() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }
# Programs started so far: a wait fails as soon as one of them has exited.
started_components=()
start() { # name args...
  local name=$1; shift
  "$@" >"$STATE/$name.log" 2>&1 &
  echo $! > "$STATE/$name.pid"
  started_components+=("$name")
}
wait_for() { # what seconds command...
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    for component in "${started_components[@]}"; do
      if ! alive "$component"; then
        log "$component exited; the end of $STATE/$component.log:"
        tail -n 20 "$STATE/$component.log" >&2
        exit 1
      fi
    done
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "$what not ready after $seconds s; logs are in $STATE"
      exit 1
    fi
    sleep 1
  done
}

# --- Network: the node's address, forwarding, br_netfilter's iptables on the bridge, and the
# outside. What was changed is recorded so that down.sh puts it back.
sysctl -n net.ipv4.ip_forward > "$STATE/ip_forward.before"
ip netns list | awk '{print $1}' > "$STATE/netns.before"
# This kernel has no dummy interfaces: a veth pair whose ends both stay here does as well.
ip link add hygie-node type veth peer name hygie-node-peer
ip addr add "$NODE_IP/32" dev hygie-node
ip link set hygie-node up
ip link set hygie-node-peer up
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1
ip netns add hygie-outside
ip link add hygie-out type veth peer name eth0 netns hygie-outside
ip addr add "$OUTSIDE_HOST/30" dev hygie-out
ip link set hygie-out up
ip -n hygie-outside addr add "$OUTSIDE_IP/30" dev eth0
ip -n hygie-outside link set eth0 up
ip -n hygie-outside link set lo up
ip -n hygie-outside route add default via "$OUTSIDE_HOST"
mkdir -p "$STATE/outside"
echo "the outside" > "$STATE/outside/index.html"
ip netns exec hygie-outside busybox httpd -f -p "$OUTSIDE_IP:8080" -h "$STATE/outside" >"$STATE/outside.log" 2>&1 &
echo $! > "$STATE/outside.pid"
# Pods talk to each other, to the node and to the outside; nothing they send leaves the
# machine. The chain only drops or returns, whatever order the policy enforcer's chains run in.
iptables -N HYGIE-NODE
iptables -A HYGIE-NODE -i hygie-cni0 -o hygie-cni0 -j RETURN
iptables -A HYGIE-NODE -i hygie-cni0 -o hygie-out -j RETURN
iptables -A HYGIE-NODE -i hygie-out -o hygie-cni0 -j RETURN
iptables -A HYGIE-NODE -i hygie-cni0 -j DROP
iptables -A HYGIE-NODE -o hygie-cni0 -j DROP
iptables -I FORWARD 1 -j HYGIE-NODE

# --- The control plane, serving on the node's address, with the controllers a node needs.
HYGIE_CONTROLPLANE_ADDRESS="$NODE_IP" HYGIE_CONTROLPLANE_NODE=1 "$CONTROLPLANE/up.sh" >/dev/null
pki="$CONTROLPLANE/state/pki"
API_SERVER="https://$NODE_IP:$(cat "$CONTROLPLANE/state/apiserver.port")"

# --- Identities: the kubelet as a node (the Node authorizer and NodeRestriction apply to it),
# the proxy, scheduler and firewall under their usual names, the CSI sidecar with its rights.
issue() { # name subject [serving address [serving host name]]
  local name=$1 subject=$2 ip=${3:-} dns=${4:-}
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$STATE/pki/$name.key" \
    -out "$STATE/pki/$name.csr" >/dev/null 2>&1
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    if [ -n "$ip" ]; then echo "extendedKeyUsage=serverAuth"; echo "subjectAltName=IP:$ip${dns:+,DNS:$dns}"; else echo "extendedKeyUsage=clientAuth"; fi
  } > "$STATE/pki/$name.ext"
  openssl x509 -req -in "$STATE/pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$STATE/pki/$name.ext" -out "$STATE/pki/$name.crt" >/dev/null 2>&1
}
kubeconfig() { # name
  local file="$STATE/$1.kubeconfig"
  kubectl config --kubeconfig "$file" set-cluster hygie-test --server "$API_SERVER" \
    --certificate-authority "$pki/ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig "$file" set-credentials "$1" --client-certificate "$STATE/pki/$1.crt" \
    --client-key "$STATE/pki/$1.key" --embed-certs >/dev/null
  kubectl config --kubeconfig "$file" set-context hygie-test --cluster hygie-test --user "$1" >/dev/null
  kubectl config --kubeconfig "$file" use-context hygie-test >/dev/null
}
issue kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
issue kubelet-serving "/CN=$NODE_NAME" "$NODE_IP"
issue kube-proxy "/CN=system:kube-proxy"
issue kube-scheduler "/CN=system:kube-scheduler"
issue kube-router "/CN=hygie-test:kube-router"
issue csi-provisioner "/CN=hygie-test:csi-provisioner"
for name in kubelet kube-proxy kube-scheduler kube-router csi-provisioner; do kubeconfig "$name"; done
kubectl_ apply -f "$HERE/manifests/rbac.yaml" >/dev/null

# --- The outside's S3 server, for the Dataset import: TLS under the test CA, one root user.
# Pods reach it by its name, which the cluster's CoreDNS answers (manifests/coredns.yaml), as
# export destinations and import sources must name a store; the machine's own clients (the
# tests, the operator's audit sink) by its address.
issue s3 "/CN=s3.outside.hygie.test" "$OUTSIDE_IP" s3.outside.hygie.test
cp "$pki/ca.crt" "$STATE/s3-ca.crt"
mkdir -p "$STATE/s3"
echo "https://$OUTSIDE_IP:7070" > "$STATE/s3.endpoint"
echo "https://s3.outside.hygie.test:7070" > "$STATE/s3.named-endpoint"
echo "hygie-test" > "$STATE/s3.access"
openssl rand -hex 20 > "$STATE/s3.secret"
start s3 ip netns exec hygie-outside "$BIN/versitygw" --access "$(cat "$STATE/s3.access")" \
  --secret "$(cat "$STATE/s3.secret")" --region fr-par --port "$OUTSIDE_IP:7070" \
  --cert "$STATE/pki/s3.crt" --key "$STATE/pki/s3.key" posix "$STATE/s3"
wait_for "the S3 server" 30 curl -s --cacert "$STATE/s3-ca.crt" -o /dev/null "https://$OUTSIDE_IP:7070/"

# --- The outside's resolver: authoritative for outside.hygie.test as an attacker's server is
# for its own zone, logging every query it receives (STATE/outside-dns.log). The cluster's
# CoreDNS forwards to it what it does not answer itself, as a managed cluster's forwards to the
# Internet (manifests/coredns.yaml): a query that reaches it is a way out.
cat > "$STATE/outside-dns.Corefile" <<EOF
outside.hygie.test:53 {
    bind $OUTSIDE_IP
    log
    template IN A {
        answer "{{ .Name }} 60 IN A $OUTSIDE_IP"
    }
    # No other record: an empty answer, so that a lookup of A and AAAA succeeds.
    template ANY ANY {
        rcode NOERROR
    }
}
.:53 {
    bind $OUTSIDE_IP
    log
    template ANY ANY {
        rcode NXDOMAIN
    }
}
EOF
start outside-dns ip netns exec hygie-outside "$BIN/coredns" -conf "$STATE/outside-dns.Corefile"
wait_for "the outside's resolver" 30 busybox nslookup up.outside.hygie.test "$OUTSIDE_IP"

# --- Images: a registry on loopback that containerd pulls registry.hygie.test from.
start registry "$BIN/crane" registry serve --address "$REGISTRY"
wait_for "the image registry" 30 curl -sf "http://$REGISTRY/v2/"
"$HERE/images.sh" "$REGISTRY" "$STATE" >&2

# --- The container runtime, with its own root, state and socket beside any other containerd.
mkdir -p "$STATE/cni" "$STATE/certs.d/registry.hygie.test"
cat > "$STATE/certs.d/registry.hygie.test/hosts.toml" <<EOF
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
cat > "$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$RUN/containerd.sock"
[ttrpc]
  address = "$RUN/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(cat "$STATE/pause.ref")"
  # This machine refuses a negative oom_score_adj, which the kubelet asks of pod sandboxes.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/certs.d"
EOF
cat > "$STATE/cni/10-hygie.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "hygie",
  "plugins": [
    {"type": "bridge", "bridge": "hygie-cni0", "isGateway": true, "isDefaultGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
              "dataDir": "$STATE/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
start containerd containerd --config "$STATE/containerd.toml"
wait_for "containerd" 30 ctr --address "$RUN/containerd.sock" version

# --- The kubelet.
printf 'nameserver %s\n' "$DNS_IP" > "$STATE/resolv.conf"
cat > "$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1, with a cgroup2 mount beside it.
cgroupDriver: cgroupfs
failCgroupV1: false
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
tlsCertFile: $STATE/pki/kubelet-serving.crt
tlsPrivateKeyFile: $STATE/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$RUN/containerd.sock
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
failSwapOn: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
podCIDR: $POD_CIDR
maxPods: 60
# The disk is shared with the rest of the machine: evict only when it is nearly full.
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
start kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
  --root-dir "$STATE/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "topology.kubernetes.io/region=$REGION,nodepool=hds"
wait_for "the node's registration" 120 kubectl_ get node "$NODE_NAME"
# The pod CIDR, which node-ipam would assign on a cloud, and which kube-router reads.
kubectl_ patch node "$NODE_NAME" --type merge -p "{\"spec\":{\"podCIDR\":\"$POD_CIDR\",\"podCIDRs\":[\"$POD_CIDR\"]}}" >/dev/null

# --- Services, scheduling and NetworkPolicies. kube-router runs its firewall only: pod routing
# is the bridge's and Services are kube-proxy's, as on a cluster whose CNI does the routing.
start kube-proxy "$BIN/kube-proxy" --kubeconfig "$STATE/kube-proxy.kubeconfig" \
  --hostname-override "$NODE_NAME" --cluster-cidr "$POD_CIDR" --proxy-mode iptables \
  --conntrack-max-per-core 0 --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$STATE/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port 0
start kube-router "$BIN/kube-router" --kubeconfig "$STATE/kube-router.kubeconfig" \
  --hostname-override "$NODE_NAME" --run-firewall=true --run-router=false --run-service-proxy=false \
  --enable-ipv6=false --health-port 0 --metrics-port 0

# --- Storage: the CSI driver and its provisioner, the driver object and the classes.
mkdir -p "$STATE/kubelet/plugins_registry" "$STATE/kubelet/plugins/hostpath.csi.hygie.test"
start csi-driver "$BIN/hygie-test-csi" --endpoint "$RUN/csi.sock" --node "$NODE_NAME" \
  --registration-dir "$STATE/kubelet/plugins_registry" --root "$STATE/volumes"
wait_for "the CSI driver's socket" 30 test -S "$RUN/csi.sock"
start csi-provisioner "$BIN/csi-provisioner" --csi-address "$RUN/csi.sock" \
  --kubeconfig "$STATE/csi-provisioner.kubeconfig" --leader-election=false \
  --extra-create-metadata --timeout 30s --http-endpoint ""
kubectl_ apply -f "$HERE/manifests/storage.yaml" >/dev/null

# --- Cluster DNS.
sed "s|@COREDNS_IMAGE@|$(cat "$STATE/coredns.ref")|; s|@DNS_IP@|$DNS_IP|" "$HERE/manifests/coredns.yaml" \
  | kubectl_ apply -f - >/dev/null

wait_for "the node's readiness" 120 kubectl_ wait --for condition=Ready "node/$NODE_NAME" --timeout 1s
wait_for "the CSI driver's registration" 60 \
  sh -c "kubectl --kubeconfig '$KUBECONFIG_PATH' get csinode $NODE_NAME -o jsonpath='{.spec.drivers[*].name}' | grep -q hostpath.csi.hygie.test"
wait_for "CoreDNS" 180 kubectl_ -n kube-system rollout status deployment/coredns --timeout 1s
log "ready in $(( $(date +%s) - started )) s: node $NODE_NAME at $NODE_IP, API server $API_SERVER"
cat "$STATE/probe.ref"
echo "$KUBECONFIG_PATH"
