#!/usr/bin/env bash
# `hygie check` on N generated workspaces in 20 files, beside kubeconform on the same files
# with Hygie's CRD schemas. Usage: tests/bench/check.sh N. The last line of stdout is the
# summary: objects=N hygie_s= kubeconform_s= hygie_rss_mib=
set -euo pipefail
N=${1:?usage: tests/bench/check.sh N}
cd "$(dirname "$0")/../.."
KUBECONFORM_VERSION=v0.7.0

cargo build --release --locked -p hygie >&2
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt >&2
WORK="$PWD/target/bench-check"
mkdir -p "$WORK/bin"
if [ ! -x "$WORK/bin/kubeconform" ]; then
  GOBIN="$WORK/bin" go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" >&2
fi
.venv/bin/python tests/bench/check.py "$N" target/release/hygie "$WORK/bin/kubeconform" "$WORK"
