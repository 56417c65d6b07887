#!/usr/bin/env bash
# Every fault point of the crash test, not only the sample the test command runs: the node's
# crash test once per row below, each row stopping the operator at one point of a creation,
# of a workspace's deletion and of a shred. Run on a node tests/node/up.sh brought up:
#   bash tests/faults/sweep.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${HYGIE_TEST_KUBECONFIG:=$PWD/tests/controlplane/state/kubeconfig}"
: "${HYGIE_NODE_PROBE_IMAGE:=$(cat tests/node/state/probe.ref)}"
export HYGIE_TEST_KUBECONFIG HYGIE_NODE_PROBE_IMAGE

rows=(
  "creation=key/created,deletion=workspace-deletion/deleted,shred=shred/key-deleted"
  "creation=applied/PersistentVolumeClaim,deletion=workspace-deletion/intended,shred=shred/intended"
  "creation=applied/StatefulSet,deletion=workspace-deletion/deleted,shred=shred/volume-deleted"
)
cargo build -p hygie --features faults --locked
log="$(mktemp)"
failed=0
for row in "${rows[@]}"; do
  start=$(date +%s)
  if HYGIE_FAULTS="$row" cargo test -p hygie-tests --features node,browser --locked \
      --test node a_crash_at_any_step >"$log" 2>&1; then
    printf 'crash at %s: passed in %s s\n' "$row" "$(($(date +%s) - start))"
  else
    failed=$((failed + 1))
    printf 'crash at %s: FAILED\n' "$row"
    tail -n 40 "$log"
  fi
done
rm -f "$log"
printf '%d of %d rows failed\n' "$failed" "${#rows[@]}"
[ "$failed" -eq 0 ]
