#!/usr/bin/env bash
# `pidguard list` over many PID files against the C floor loop
# (bench/c/listfloor.c: open, read, lock-probe, close, kill(pid, 0) per file),
# measured in the same run on a tmpfs.
#
# Usage: bench/list.sh [N]        (N files, default 10000)
#        ROUNDS=7 bench/list.sh   (rounds, default 5)
#
# The directory holds a realistic mix: half stale files (their process is
# gone), the rest naming a live process without a lock (as other tools write
# them; pidguard checks their identity: start time, namespace, kernel thread),
# plus 10 files locked by live holders (`pidguard run --exec`). Prints a
# Markdown table of the median ns/file of each and their ratio. Exit 0 even
# when the 3x target is missed; nonzero when something fails.
#
# Environment for bench/compare.sh: BENCH_TMPFS=DIR makes the directory under
# DIR (default /dev/shm when it is a tmpfs); BENCH_SUMMARY=FILE appends
# `list_pidguard_ns=`, `list_floor_ns=` lines and, when /usr/bin/time exists,
# the peak RSS in KiB of `pidguard list DIR` and `pidguard status -p` on a
# held file (`rss_list_kib=`, `rss_status_kib=`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-10000}"
rounds="${ROUNDS:-5}"
out="$root/target/bench"
mkdir -p "$out"

log() { printf 'list.sh: %s\n' "$*" >&2; }

log "building"
(cd "$root" && cargo build --release -q -p pidguard-cli)
gcc -O2 -Wall -Wextra -o "$out/listfloor" "$root/bench/c/listfloor.c"
pg="${CARGO_TARGET_DIR:-$root/target}/release/pidguard"

base="${BENCH_TMPFS:-/dev/shm}"
[ -n "${BENCH_TMPFS:-}" ] || [ "$(stat -f -c %T "$base" 2>/dev/null)" = tmpfs ] || base="${TMPDIR:-/tmp}"
dir="$(mktemp -d "$base/pidguard-list.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

sleep 1000 &
live=$!
pids+=("$live")
true &
dead=$!
wait "$dead" || true
half=$((n / 2))
for ((i = 0; i < n - 10; i++)); do
  if ((i < half)); then echo "$dead"; else echo "$live"; fi >"$dir/f$i.pid"
done
for ((i = 0; i < 10; i++)); do
  "$pg" run --exec -p "$dir/held$i.pid" -- sleep 1000 &
  pids+=("$!")
done
sleep 0.5

declare -a t_pg t_floor
run_pg() {
  local s e
  s=$(date +%s%N)
  "$pg" list "$dir" >/dev/null
  e=$(date +%s%N)
  t_pg+=($(((e - s) / n)))
}
run_floor() { t_floor+=("$("$out/listfloor" "$dir" 2>/dev/null | awk '{print $2}')"); }
# The order alternates every round, so neither always runs on a warmer cache.
for ((r = 0; r < rounds; r++)); do
  if ((r % 2 == 0)); then
    run_pg
    run_floor
  else
    run_floor
    run_pg
  fi
  log "round $((r + 1)): pidguard ${t_pg[-1]} ns/file, floor ${t_floor[-1]} ns/file"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mp=$(median "${t_pg[@]}")
mf=$(median "${t_floor[@]}")
ratio=$(awk -v a="$mp" -v b="$mf" 'BEGIN {printf "%.2f", a/b}')
met=$(awk -v r="$ratio" 'BEGIN {print (r <= 3.0) ? "yes" : "no"}')

# maxrss CMD...: the "Maximum resident set size" (KiB) /usr/bin/time -v reports.
maxrss() {
  /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': *' '/Maximum resident set size/ { print $2 }'
}
if [[ -n "${BENCH_SUMMARY:-}" ]]; then
  {
    echo "list_pidguard_ns=$mp"
    echo "list_floor_ns=$mf"
    if [[ -x /usr/bin/time ]]; then
      echo "rss_list_kib=$(maxrss "$pg" list "$dir")"
      echo "rss_status_kib=$(maxrss "$pg" status -p "$dir/held0.pid")"
    fi
  } >>"$BENCH_SUMMARY"
fi

echo "| program | median ns/file | runs |"
echo "| --- | ---: | --- |"
echo "| pidguard list | $mp | ${t_pg[*]} |"
echo "| C floor (open, read, lock probe, close, kill 0) | $mf | ${t_floor[*]} |"
echo
echo "| ratio | value | target | met |"
echo "| --- | ---: | --- | --- |"
echo "| pidguard / floor | $ratio | <= 3.00 | $met |"
echo
echo "- N = $n files ($half stale, $((n - 10 - half)) unlocked naming a live process, 10 locked), $rounds rounds, order alternating"
echo "- machine: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "- directory: $base ($(stat -f -c %T "$base"))"
