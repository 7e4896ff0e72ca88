#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer on stable Rust (no cargo-fuzz or
# nightly needed) and runs each for SECONDS (default 20) on its corpus in
# fuzz/corpus/<target>, adding what it finds there. Crashes are written to
# fuzz/artifacts/<target>/ and make the script fail.
#
#   fuzz/run.sh            # every target, 20 s each (what CI runs)
#   fuzz/run.sh 600 parse  # one target, 10 minutes
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(parse status)

# What `cargo fuzz build --sanitizer none` passes: SanitizerCoverage
# instrumentation through stable -C flags, and cfg(fuzzing).
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# An explicit --target keeps the instrumentation out of build scripts.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --bins --target "$host"
bin="$CARGO_TARGET_DIR/$host/release"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== fuzz target $t: ${seconds}s, corpus fuzz/corpus/$t ($(ls "corpus/$t" | wc -l) inputs)"
  # New inputs go to a scratch directory first, then only the ones that
  # add coverage are merged into the committed corpus.
  mkdir -p "$scratch/$t"
  if ! PIDGUARD_FUZZ_DIR="$scratch" "$bin/$t" \
      -max_total_time="$seconds" -max_len=128 -timeout=5 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
      "$scratch/$t" "corpus/$t" 2>"$scratch/$t.log"; then
    tail -40 "$scratch/$t.log"
    echo "FAILED: fuzz target $t found a crash; the input is in fuzz/artifacts/$t/" >&2
    status=1
    continue
  fi
  grep -E "^stat::(number_of_executed_units|new_units_added)|Done [0-9]+ runs" "$scratch/$t.log" || true
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    PIDGUARD_FUZZ_DIR="$scratch" "$bin/$t" -merge=1 \
      "corpus/$t" "$scratch/$t" 2>>"$scratch/$t.log" >/dev/null
  fi
done
exit "$status"
