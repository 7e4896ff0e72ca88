#!/usr/bin/env bash
# docs/comparison.md, reproduced: pidguard beside the Rust crates people pick
# for PID files and single-instance locks, on the same hard cases, and the
# acquire + release cycle time on tmpfs and on ext4, all in one run.
#
# Usage: bench/comparison.sh             (full run: 32 processes x 20 rounds,
#                                         about 5-10 minutes on 2 CPUs)
#        QUICK=1 bench/comparison.sh     (small counts: checks that it works)
#
# The crates come from crates.io, pinned by bench/crates/Cargo.lock, in
# bench/crates: a cargo project of its own, outside the workspace (the
# root Cargo.toml excludes it), never published. It builds that project
# (release), then runs, on a fresh `mktemp -d` directory on /dev/shm
# (tmpfs):
#   pidguard-comparison cases DIR PROCS ROUNDS READER_MS
# and times the cycle on that tmpfs and on ext4 (a 256 MiB image made with
# mkfs.ext4 and loop-mounted, as root; without root the ext4 column is left
# out, or give EXT4_DIR=/some/ext4/dir):
#   pidguard-comparison cycle DIR N ROUNDS MAX_MS
# Everything it makes is removed at the end (the image is unmounted).
#
# Knobs: PROCS=32 ROUNDS=20 READER_MS=2000 CYCLE_N=20000 CYCLE_ROUNDS=5
#        CYCLE_MS=2000 (a round stops after CYCLE_N cycles or CYCLE_MS)
#        (QUICK=1: 8, 2, 300, 2000, 2, 300).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'comparison.sh: %s\n' "$*" >&2; }

if [ -n "${QUICK:-}" ]; then
  : "${PROCS:=8}" "${ROUNDS:=2}" "${READER_MS:=300}" "${CYCLE_N:=2000}" "${CYCLE_ROUNDS:=2}" "${CYCLE_MS:=300}"
else
  : "${PROCS:=32}" "${ROUNDS:=20}" "${READER_MS:=2000}" "${CYCLE_N:=20000}" "${CYCLE_ROUNDS:=5}" "${CYCLE_MS:=2000}"
fi
command -v flock >/dev/null || { log "error: flock(1) is needed (Debian: util-linux)"; exit 1; }

log "building bench/crates (release)"
cargo build --release --locked -q --manifest-path "$root/bench/crates/Cargo.toml"
bin="$root/bench/crates/target/release/pidguard-comparison"

tmp=$(mktemp -d /dev/shm/pidguard-comparison.XXXXXX)
mnt=""
cleanup() {
  if [ -n "$mnt" ]; then umount "$mnt" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/cases" "$tmp/cycle"

ext4="${EXT4_DIR:-}"
if [ -z "$ext4" ] && [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null; then
  # The image lives on the disk (not on the tmpfs), as a loop device.
  img=$(mktemp /var/tmp/pidguard-comparison-ext4.XXXXXX)
  truncate -s 256M "$img"
  mkfs.ext4 -q -F "$img"
  mkdir -p "$tmp/ext4"
  mount -o loop "$img" "$tmp/ext4"
  mnt="$tmp/ext4"
  rm -f "$img" # unlinked: the loop device keeps it until the unmount
  ext4="$tmp/ext4"
fi

start=$(date -u +%s)
echo "## Run"
echo
echo "\`bench/comparison.sh\` (PROCS=$PROCS ROUNDS=$ROUNDS READER_MS=$READER_MS CYCLE_N=$CYCLE_N CYCLE_ROUNDS=$CYCLE_ROUNDS CYCLE_MS=$CYCLE_MS) at $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -srm), $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start; $(rustc --version)."
echo
echo "## Hard cases (PID files on tmpfs)"
echo
log "cases ($PROCS processes x $ROUNDS rounds in the race)"
"$bin" cases "$tmp/cases" "$PROCS" "$ROUNDS" "$READER_MS"
echo
echo "## Acquire + release cycle (µs, median of $CYCLE_ROUNDS rounds of $CYCLE_N cycles or ${CYCLE_MS} ms, in one process)"
echo
log "cycle on tmpfs"
"$bin" cycle "$tmp/cycle" "$CYCLE_N" "$CYCLE_ROUNDS" "$CYCLE_MS" > "$tmp/tmpfs.tsv"
if [ -n "$ext4" ]; then
  log "cycle on ext4 ($ext4)"
  "$bin" cycle "$ext4" "$CYCLE_N" "$CYCLE_ROUNDS" "$CYCLE_MS" > "$tmp/ext4.tsv"
  echo "| crate | tmpfs µs | tmpfs: its time / pidguard's | ext4 µs | ext4: its time / pidguard's |"
  echo "|---|---|---|---|---|"
  paste "$tmp/tmpfs.tsv" "$tmp/ext4.tsv" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $5, $6 }'
else
  echo "| crate | tmpfs µs | tmpfs: its time / pidguard's |"
  echo "|---|---|---|"
  awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }' "$tmp/tmpfs.tsv"
  echo
  echo "(ext4 left out: not root and no EXT4_DIR given)"
fi
echo
echo "A ratio below 1 means that crate's cycle is faster than pidguard's. Took $(( $(date -u +%s) - start )) s; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
