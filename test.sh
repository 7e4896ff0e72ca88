#!/usr/bin/env bash
# Runs the whole test suite: unit, property, integration and doc tests, with
# every cargo feature on (signal-cleanup, tokio).
set -euo pipefail
cd "$(dirname "$0")"
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
else
  cargo test --workspace --all-features --no-fail-fast --lib --bins --tests
fi
cargo test --workspace --all-features --doc
