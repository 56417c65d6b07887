#!/usr/bin/env bash
# The whole test suite: formatting and lints, Rust unit, golden and CLI tests, the external
# validators on rendered output, the end-to-end tests on a real control plane, then on a real
# node (root).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
test -z "$(gofmt -l tests/controlplane/cmd tests/node/cmd)" || { gofmt -l tests/controlplane/cmd tests/node/cmd; echo "gofmt: the files above need formatting" >&2; exit 1; }

step "Rust tests (unit, golden, CLI)"
cargo test --workspace --locked

step "validators on rendered output (kubernetes-validate, checkov)"
if [ ! -x .venv/bin/pytest ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
.venv/bin/pytest -q tests/validators

step "the register in a headless browser (Chromium)"
cargo test -p hygie-tests --features browser --locked --test register

step "end-to-end tests on a real control plane (tests/controlplane)"
trap 'bash tests/controlplane/down.sh' EXIT
HYGIE_TEST_KUBECONFIG="$(bash tests/controlplane/up.sh | tail -n 1)"
export HYGIE_TEST_KUBECONFIG
# The operator the tests run, with its fault points (compiled out of the image's build).
cargo build -p hygie --features faults --locked
HYGIE_CHART_RENDER="$PWD/target/chart-defaults.yaml"
.venv/bin/python tests/validators/chart.py "$HYGIE_CHART_RENDER"
export HYGIE_CHART_RENDER
cargo test -p hygie-tests --features controlplane,browser --locked --test controlplane --test operator --test outage --test rbac --test audit --test airlock --test walls --test screen --test gateway

step "end-to-end tests on a real node (tests/node)"
bash tests/controlplane/down.sh
trap 'bash tests/node/down.sh' EXIT
node_out="$(bash tests/node/up.sh)"
HYGIE_NODE_PROBE_IMAGE="$(echo "$node_out" | tail -n 2 | head -n 1)"
HYGIE_TEST_KUBECONFIG="$(echo "$node_out" | tail -n 1)"
export HYGIE_NODE_PROBE_IMAGE HYGIE_TEST_KUBECONFIG
cargo test -p hygie-tests --features node,browser --locked --test node --test chart
