#!/usr/bin/env bash
# Runs the whole test suite: unit, property, integration, hardening and doc
# tests, with every cargo feature on, then a short fuzz run (FUZZ_SECONDS,
# default 15 per target; 0 skips it). Prints the hardening scenarios'
# summary (run, passed, skipped with reason) at the end.
# PIDGUARD_SOAK=1 ./test.sh runs the hardening scenarios' long soak rounds.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
summary_dir=target/tmp/hardening-summary
# Every test that skipped its body writes one line here (the test
# support's crates/testkit/src/skip.rs), listed at the end.
skip_dir=target/tmp/skipped
rm -rf "$summary_dir" "$skip_dir"
skipped_steps=()
status=0
# Every feature of every crate, as one fixed list (no feature list to
# compute: etcd is the crate pidguard-etcd, a workspace member, not a
# feature of the core library). The etcd backend builds without protoc (its
# gRPC code is checked in, crates/pidguard-etcd-client); its tests
# (pidguard-etcd's and the CLI's tests/etcd.rs) need etcd-server and
# openssl, which .ci/run installs, and skip with the reason without them.
features=(--all-features)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace "${features[@]}" --no-fail-fast || status=$?
else
  cargo test --workspace "${features[@]}" --no-fail-fast --lib --bins --tests || status=$?
fi
cargo test --workspace "${features[@]}" --doc || status=$?

# README's static build ("Installing"): it must still link, be static and
# work. Built after the tests (not alongside them: a build beside timing
# tests on a small machine makes them flaky), into its own target directory.
if [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || [ -e /usr/lib/libc.a ]; then
  static_dir=target/static-check
  if CARGO_TARGET_DIR="$static_dir" cargo rustc --release -q -p pidguard-cli --bin pidguard -- \
    -C target-feature=+crt-static; then
    bin="$static_dir/release/pidguard"
    tmp="$(mktemp -d)"
    if ldd "$bin" 2>&1 | grep -q 'not a dynamic executable\|statically linked' &&
      "$bin" run --exec -p "$tmp/static.pid" -- /bin/true && "$bin" --version >/dev/null; then
      echo "static build: linked statically and works ($bin)"
    else
      echo "static build: FAILED (not static, or does not run): $bin" >&2
      status=1
    fi
    rm -rf "$tmp"
  else
    echo "static build: FAILED to build (see above)" >&2
    status=1
  fi
  # .ci/run sets PIDGUARD_FRUGAL_DISK: a build not used again is removed.
  [ "${PIDGUARD_FRUGAL_DISK:-0}" != 1 ] || rm -rf "$static_dir"
else
  echo "static build: skipped, glibc's static libraries are not installed (Debian: libc6-dev)"
  skipped_steps+=("static build: glibc's static libraries are not installed (Debian: libc6-dev)")
fi

# A short fuzz run of every target on its committed corpus (docs/FUZZING.md).
# libfuzzer-sys compiles libFuzzer's C++ sources: without a C++ compiler
# the step is skipped, and says so (.ci/run installs g++).
# The compiler found is the one cc-rs is told to use (CXX): by default it
# calls c++, which a machine with only clang++ (or only g++) may not have.
if [ "${FUZZ_SECONDS:-15}" != 0 ]; then
  cxx=
  for c in ${CXX:+"$CXX"} c++ g++ clang++; do
    if command -v "$c" >/dev/null; then
      cxx=$c
      break
    fi
  done
  if [ -n "$cxx" ]; then
    CXX="$cxx" fuzz/run.sh "${FUZZ_SECONDS:-15}" || status=$?
    [ "${PIDGUARD_FRUGAL_DISK:-0}" != 1 ] || rm -rf fuzz/target
  else
    why="no C++ compiler (${CXX:+$CXX, }c++, g++ or clang++; Debian: g++), which libfuzzer-sys needs"
    echo "fuzz: skipped, $why" >&2
    skipped_steps+=("fuzz run: $why")
  fi
fi

echo
echo "Hardening scenarios (crates/pidguard-cli/tests/hardening):"
if [ -d "$summary_dir" ]; then
  # (grep fails when nothing matches: not an error here.)
  passed=$( (grep -l '^passed' "$summary_dir"/*.txt 2>/dev/null || true) | wc -l)
  skipped=$( (grep -l '^skipped' "$summary_dir"/*.txt 2>/dev/null || true) | wc -l)
  for f in "$summary_dir"/*.txt; do
    printf '  %-45s %s\n' "$(basename "$f" .txt)" "$(cat "$f")"
  done
  echo "  run: $((passed + skipped)), passed: $passed, skipped: $skipped (a failed scenario records nothing: see the test output above)"
else
  echo "  none recorded"
fi

echo
echo "Skipped (each test that did not run its body, and why; they count as passed above):"
n=0
if [ -d "$skip_dir" ]; then
  for f in "$skip_dir"/*.txt; do
    [ -e "$f" ] || continue
    printf '  %-70s %s\n' "$(basename "$f" .txt | sed 's/__/::/g')" "$(cat "$f")"
    n=$((n + 1))
  done
fi
# Cross-target checks .ci/run skipped (.ci/cross, a target rustup could
# not install).
if [ -n "${PIDGUARD_CROSS_SKIPPED:-}" ] && [ -s "$PIDGUARD_CROSS_SKIPPED" ]; then
  while IFS= read -r line; do
    skipped_steps+=("$line")
  done <"$PIDGUARD_CROSS_SKIPPED"
fi
for step in "${skipped_steps[@]}"; do
  printf '  %s\n' "$step"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || echo "  none"
exit "$status"
