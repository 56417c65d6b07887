#!/usr/bin/env bash
# The gateway's browser page, into the folder given ($1): index.html, and noVNC's RFB client
# (MPL-2.0, pinned by package-lock.json) bundled by esbuild into one ES module, novnc.js, with
# noVNC's licence beside it. The image and the tests serve this folder.
set -euo pipefail
out="$(realpath -m "$1")"
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
mkdir -p "$out"
OUT="$out" npm run --silent build >/dev/null
cp index.html "$out/"
cp node_modules/@novnc/novnc/LICENSE.txt "$out/novnc.LICENSE.txt"
