#!/usr/bin/env bash
# A peer operator side by side with Hygie, counted the same way as run.sh: built from an
# unmodified copy of ../shared/peers/<peer> (the Go dependencies from the Go module proxy),
# run as its own identity against a fresh test control plane.
# Usage: tests/bench/peer.sh N [PEER] [steady-seconds]. The last line of stdout is the summary.
set -euo pipefail
N=${1:?usage: tests/bench/peer.sh N [PEER] [steady-seconds]}
PEER=${2:-kubeflow-notebook-controller}
STEADY=${3:-120}
cd "$(dirname "$0")/../.."
# Requests are counted from the audit log: keep every rotated file of a large run.
export HYGIE_AUDIT_LOG_BACKUPS=100
SOURCES="$(cd ../shared/peers/"$PEER" && pwd)"

WORK="$PWD/target/bench-peer/$PEER"
if [ ! -x "$WORK/bin/controller" ]; then
  rm -rf "$WORK/src" && mkdir -p "$WORK/bin" && cp -r "$SOURCES" "$WORK/src"
  # The notebook-controller's main package is the module's root, the workspaces controller's cmd/.
  MAIN=.; if [ -d "$WORK/src/cmd" ]; then MAIN=./cmd; fi
  (cd "$WORK/src" && go build -o "$WORK/bin/controller" "$MAIN") >&2
fi
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt >&2

bash tests/controlplane/down.sh >&2
trap 'bash tests/controlplane/down.sh >&2' EXIT
KUBECONFIG="$(bash tests/controlplane/up.sh | tail -n 1)"
export KUBECONFIG
.venv/bin/python tests/bench/peer.py "$N" "$PEER" "$WORK/bin/controller" "$WORK/src" "$STEADY"
