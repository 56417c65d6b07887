#!/usr/bin/env bash
# The operator at scale on a fresh test control plane: one HostingProfile, N Datasets and N
# Workspaces (one dataset and two members each), time to reconcile them all, then 120 s at rest.
# Usage: tests/bench/run.sh N [steady-seconds]. The last line of stdout is the summary.
set -euo pipefail
N=${1:?usage: tests/bench/run.sh N [steady-seconds]}
STEADY=${2:-120}
cd "$(dirname "$0")/../.."

cargo build --release --locked -p hygie >&2
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt >&2

bash tests/controlplane/down.sh >&2
trap 'bash tests/controlplane/down.sh >&2' EXIT
KUBECONFIG="$(bash tests/controlplane/up.sh | tail -n 1)"
export KUBECONFIG
.venv/bin/python tests/bench/bench.py --workspaces "$N" --steady "$STEADY" --binary target/release/hygie
