#!/usr/bin/env bash
# The operator at scale on a fresh test control plane: one HostingProfile, N Datasets and N
# Workspaces (one dataset and two members each), time to reconcile them all, then 120 s at rest;
# before that, on a control plane of its own, the time kubectl takes to write the same children
# (the limit Hygie is compared with).
# Usage: tests/bench/run.sh N [steady-seconds]. The last line of stdout is the summary.
set -euo pipefail
N=${1:?usage: tests/bench/run.sh N [steady-seconds]}
STEADY=${2:-120}
cd "$(dirname "$0")/../.."
# Requests are counted from the audit log: keep every rotated file of a large run.
export HYGIE_AUDIT_LOG_BACKUPS=100

cargo build --release --locked -p hygie >&2
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt >&2

fresh_control_plane() {
  bash tests/controlplane/down.sh >&2
  KUBECONFIG="$(bash tests/controlplane/up.sh | tail -n 1)"
  export KUBECONFIG
}
trap 'bash tests/controlplane/down.sh >&2' EXIT

# The limit first: the children alone, written by kubectl on a control plane of their own.
fresh_control_plane
LIMIT="$(.venv/bin/python tests/bench/bench.py --workspaces "$N" --binary target/release/hygie --limit)"
echo "$LIMIT" | head -n -1
fresh_control_plane
SUMMARY="$(.venv/bin/python tests/bench/bench.py --workspaces "$N" --steady "$STEADY" --binary target/release/hygie)"
echo "$SUMMARY" | head -n -1
LIMIT_S="$(echo "$LIMIT" | tail -n 1)"
READY_S="$(echo "$SUMMARY" | tail -n 1 | sed -n 's/.* ready_s=\([0-9.]*\) .*/\1/p')"
echo "ready_s / limit_s                $(python3 -c "print(f'{$READY_S / ${LIMIT_S#limit_s=}:.2f}')")"
echo "$(echo "$SUMMARY" | tail -n 1) $LIMIT_S"
