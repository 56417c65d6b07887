#!/usr/bin/env bash
# Stops what up.sh started, by the PIDs it recorded and nothing else, and removes its state.
# Idempotent: nothing to stop is not an error.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${HYGIE_CONTROLPLANE_STATE:-$HERE/state}"

for component in kube-controller-manager kube-apiserver etcd; do
  pidfile="$STATE/$component.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
rm -rf "$STATE"
