#!/usr/bin/env bash
# The gateway beside Debian's websockify on the same desktop and stream (tests/bench/gateway.py):
# latency added to a small update, throughput and CPU per MB of full-screen updates. Runs on a
# fresh test control plane, where the gateway admits its session.
# Usage: tests/bench/gateway.sh [seconds per path]. The last line of stdout is the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p hygie >&2
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt >&2
bash tests/controlplane/down.sh >&2
KUBECONFIG="$(bash tests/controlplane/up.sh | tail -n 1)"
trap 'bash tests/controlplane/down.sh >&2' EXIT
kubectl --kubeconfig "$KUBECONFIG" apply --server-side --force-conflicts -f crds/ >/dev/null
.venv/bin/python tests/bench/gateway.py target/release/hygie "$KUBECONFIG" target/bench-gateway "${1:-10}"
