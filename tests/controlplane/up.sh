#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback for the test suite: etcd, kube-apiserver
# (RBAC, an admin client certificate) and kube-controller-manager (garbage collector, namespace
# lifecycle, PVC protection, service accounts, StatefulSets and Jobs, the aggregation of the
# built-in edit and admin roles; no cloud provider, no
# kubelet: pods are stored, never run). Prints the kubeconfig's absolute path as its last line.
# Idempotent: when the control plane is already up, it only prints the path.
#
# tests/node/up.sh sets HYGIE_CONTROLPLANE_ADDRESS to the node's address, which the API server
# then serves and advertises (pods reach it through the `kubernetes` Service), and
# HYGIE_CONTROLPLANE_NODE=1, which adds the controllers a node needs: node lifecycle, volume
# binding, Deployments, endpoints and the root CA publisher. Without a node they stay off, so
# that claims keep the phase the tests give them.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${HYGIE_CONTROLPLANE_STATE:-$HERE/state}"
BIN="$HERE/bin"
KUBECONFIG_PATH="$STATE/kubeconfig"
ADDRESS="${HYGIE_CONTROLPLANE_ADDRESS:-127.0.0.1}"
NODE="${HYGIE_CONTROLPLANE_NODE:-}"

log() { echo "controlplane: $*" >&2; }

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

ready() {
  [ -f "$KUBECONFIG_PATH" ] && kubectl --kubeconfig "$KUBECONFIG_PATH" get --raw /readyz >/dev/null 2>&1
}

if alive etcd && alive kube-apiserver && alive kube-controller-manager && ready; then
  echo "$KUBECONFIG_PATH"
  exit 0
fi
if [ -d "$STATE" ]; then
  log "a previous control plane is half up; stopping it first"
  "$HERE/down.sh" >&2
fi

"$HERE/build.sh" >&2
mkdir -p "$STATE/pki" "$STATE/etcd"
started=$(date +%s)

free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "${1:-127.0.0.1}"; }
ETCD_PORT=$(free_port)
ETCD_PEER_PORT=$(free_port)
API_PORT=$(free_port "$ADDRESS")
echo "$API_PORT" > "$STATE/apiserver.port"
echo "$ETCD_PORT" > "$STATE/etcd.port"

# Certificates: one CA for serving and clients, and the service-account signing key.
pki="$STATE/pki"
openssl_quiet() { openssl "$@" >/dev/null 2>&1; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hygie-test-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt"
issue() { # name subject [subjectAltName]
  local name=$1 subject=$2 san=${3:-}
  openssl_quiet req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$pki/$name.key" -out "$pki/$name.csr"
  local ext="$pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then echo "extendedKeyUsage=serverAuth"; echo "subjectAltName=$san"; else echo "extendedKeyUsage=clientAuth"; fi
  } > "$ext"
  openssl_quiet x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$ext" -out "$pki/$name.crt"
}
issue apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,IP:$ADDRESS,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
issue admin "/O=system:masters/CN=hygie-test-admin"
# The operator under test authenticates as the chart's ServiceAccount (a client certificate
# with its user name), so that it holds exactly the chart's RBAC and nothing more, and the
# audit log tells its requests apart from the tests'.
issue operator "/CN=system:serviceaccount:hygie-system:hygie"
# The controllers run under one identity with full rights (no per-controller service
# accounts: there is no token controller here).
issue controller-manager "/O=system:masters/CN=system:kube-controller-manager"
# The API server's identity towards kubelets (exec, logs).
issue kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
# People, for the tests of what the API server vouches for (the airlock's requester and
# reviewers): alice researches, bob and carol steward data, dave steward data and works in the
# study too, mallory is anyone else.
issue alice "/O=researchers/CN=alice"
issue bob "/O=data-stewards/CN=bob"
issue carol "/O=data-stewards/CN=carol"
issue dave "/O=data-stewards/CN=dave"
issue mallory "/O=visitors/CN=mallory"
openssl_quiet genrsa -out "$pki/sa.key" 2048
openssl_quiet rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

kubeconfig() { # file user
  local file=$1 user=$2
  kubectl config --kubeconfig "$file" set-cluster hygie-test --server "https://$ADDRESS:$API_PORT" \
    --certificate-authority "$pki/ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig "$file" set-credentials "$user" --client-certificate "$pki/$user.crt" \
    --client-key "$pki/$user.key" --embed-certs >/dev/null
  kubectl config --kubeconfig "$file" set-context hygie-test --cluster hygie-test --user "$user" >/dev/null
  kubectl config --kubeconfig "$file" use-context hygie-test >/dev/null
}
kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager

start() { # name args...
  local name=$1; shift
  "$BIN/$name" "$@" >"$STATE/$name.log" 2>&1 &
  echo $! > "$STATE/$name.pid"
}

start etcd --name hygie-test --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "hygie-test=http://127.0.0.1:$ETCD_PEER_PORT" \
  --listen-metrics-urls "" --log-level warn

start kube-apiserver \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address "$ADDRESS" --advertise-address "$ADDRESS" --secure-port "$API_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --kubelet-client-certificate "$pki/kubelet-client.crt" --kubelet-client-key "$pki/kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/12 \
  --allow-privileged=false \
  --audit-log-path "$STATE/audit.log" --audit-policy-file "$HERE/audit-policy.yaml" \
  --audit-log-maxsize 200 --audit-log-maxbackup "${HYGIE_AUDIT_LOG_BACKUPS:-1}" \
  --profiling=false

controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller,serviceaccount-controller,statefulset-controller,job-controller
if [ -n "$NODE" ]; then
  controllers+=,node-lifecycle-controller,persistentvolume-binder-controller,deployment-controller,replicaset-controller,endpoints-controller,endpointslice-controller,root-ca-certificate-publisher-controller,pod-garbage-collector-controller
fi
start kube-controller-manager \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 \
  --leader-elect=false --use-service-account-credentials=false \
  --controllers "$controllers" \
  --concurrent-gc-syncs 5

kubeconfig "$KUBECONFIG_PATH" admin
kubeconfig "$STATE/operator.kubeconfig" operator
mkdir -p "$STATE/users"
for user in alice bob carol dave mallory; do kubeconfig "$STATE/users/$user.kubeconfig" "$user"; done

deadline=$((started + 120))
until ready; do
  for component in etcd kube-apiserver kube-controller-manager; do
    if ! alive "$component"; then
      log "$component exited; the end of $STATE/$component.log:"
      tail -n 20 "$STATE/$component.log" >&2
      exit 1
    fi
  done
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "kube-apiserver not ready after 120 s; see $STATE/kube-apiserver.log"
    exit 1
  fi
  sleep 0.5
done
# The namespace and service-account controllers make a cluster usable: wait for `default`.
until kubectl --kubeconfig "$KUBECONFIG_PATH" -n default get serviceaccount default >/dev/null 2>&1; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "the default ServiceAccount never appeared; see $STATE/kube-controller-manager.log"
    exit 1
  fi
  sleep 0.5
done
log "ready in $(( $(date +%s) - started )) s on https://$ADDRESS:$API_PORT"
echo "$KUBECONFIG_PATH"
