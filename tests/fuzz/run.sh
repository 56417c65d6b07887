#!/usr/bin/env bash
# Coverage-guided fuzzing of every target of fuzz/ (libFuzzer through cargo-fuzz, which needs a
# nightly toolchain), each for SECONDS (default 60), from a copy of its corpus: the corpus in
# the repository changes only when an input is added to it by hand. Prints, per target, the
# runs, the coverage reached and the crashes found; an input that crashes is left in
# fuzz/artifacts/<target>/ and makes the command fail: copy it into fuzz/corpus/<target>/ once
# fixed, and the test command replays it for ever.
#   bash tests/fuzz/run.sh [SECONDS] [TARGET...]
# HYGIE_FUZZ_TARGET_DIR builds elsewhere than target/ (the instrumented build is a release
# build of its own, which then does not wait for the test command's).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(bundle cidr image_reference endpoint quantity rfb)
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
printf '%-16s %8s %12s %10s %8s %8s\n' target seconds runs exec_per_s cov crashes
for target in "${targets[@]}"; do
  cp -r "fuzz/corpus/$target" "$work/$target"
  log="$work/$target.log"
  status=0
  cargo +nightly fuzz run --fuzz-dir fuzz --features libfuzzer \
    ${HYGIE_FUZZ_TARGET_DIR:+--target-dir "$HYGIE_FUZZ_TARGET_DIR"} "$target" "$work/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  crashes=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l)
  printf '%-16s %8s %12s %10s %8s %8s\n' "$target" "$seconds" "${runs:-?}" "${speed:-?}" "${cov:-?}" "$crashes"
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=$((failed + 1))
    grep -E 'panicked|ERROR|SUMMARY' "$log" | head -n 5
  fi
done
[ "$failed" -eq 0 ]
