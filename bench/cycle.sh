#!/usr/bin/env bash
# Acquire/release cycle benchmark: pidguard vs the bare syscall floor vs
# libbsd's pidfile(3) vs the Python `pid` package, on a tmpfs, measured in
# the same run; plus pidguard's protocol written in C (bench/c/protocol.c),
# which shows what the protocol itself costs against the floor, and
# pidguard without its kernel identity record (pidguard-no-record, the
# example with --no-kernel-identity), which shows what the record costs.
#
# Usage: bench/cycle.sh [N]       (N cycles per run, default 200000)
#        ROUNDS=7 bench/cycle.sh  (rounds, default 5)
#
# Builds crates/pidguard/examples/cycle.rs (release) and bench/c/{floor,protocol,libbsd}.c
# (gcc -O2) into target/bench/ (plus target/bench/python-pid, a wrapper
# around bench/py/pidcycle.py), then runs the programs ROUNDS times each
# on the same PID file path, interleaved, alternating the order every round.
# Prints, as Markdown on stdout: the median ns/cycle of each program, the
# ratios pidguard/floor and pidguard/libbsd against the targets (<= 1.3 and
# <= 1.0), the machine and the filesystem used. Build output and progress go
# to stderr.
#
# Exit status: 0 when everything ran, whether or not a target was met (this
# is a measurement, not a test); nonzero when a build or a program fails.
# libbsd-dev is installed with apt-get, and the Python `pid` package with
# `pip install --target target/bench/pylib` (nothing outside the repository;
# Debian's own python3 refuses system-wide pip installs), when missing and
# running as root; otherwise that column is skipped with a message.
#
# Environment for bench/compare.sh: BENCH_TMPFS=DIR makes the PID file
# directory under DIR instead of the first writable tmpfs; BENCH_SUMMARY=FILE
# appends `cycle_<program>_ns=<median>` lines to FILE.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-200000}"
rounds="${ROUNDS:-5}"

log() { printf 'cycle.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$n'"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$rounds'"
command -v gcc >/dev/null || die "gcc is needed to build bench/c/*.c"
command -v cargo >/dev/null || die "cargo is needed to build the example"

# (a) libbsd-dev, for <bsd/libutil.h> and -lbsd.
have_libbsd=1
if [[ ! -r /usr/include/bsd/libutil.h ]]; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing libbsd-dev"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbsd-dev; } >&2; then
      log "could not install libbsd-dev: skipping libbsd"
      have_libbsd=0
    fi
  else
    log "libbsd-dev is not installed and cannot be installed here (needs root and apt-get): skipping libbsd"
    have_libbsd=0
  fi
fi

# (a2) The Python `pid` package: an installed one, or one in target/bench/pylib.
have_pypid=1
pylib="$root/target/bench/pylib"
if ! command -v python3 >/dev/null; then
  log "python3 is not installed: skipping python-pid"
  have_pypid=0
elif ! PYTHONPATH="$pylib" python3 -c 'import pid' 2>/dev/null; then
  if [[ "$(id -u)" -eq 0 ]] && python3 -m pip --version >/dev/null 2>&1; then
    log "installing the Python pid package: pip install --target $pylib pid"
    if ! python3 -m pip install -q --disable-pip-version-check --target "$pylib" pid >&2; then
      log "could not install the Python pid package into $pylib: skipping python-pid"
      have_pypid=0
    fi
  else
    log "the Python pid package is not installed and cannot be installed here (needs root and pip; run 'pip install pid'): skipping python-pid"
    have_pypid=0
  fi
fi

# (b) Build into target/bench/.
out="$root/target/bench"
mkdir -p "$out"
log "building the example (release)"
(cd "$root" && cargo build --release --example cycle -p pidguard) >&2
cp -- "${CARGO_TARGET_DIR:-$root/target}/release/examples/cycle" "$out/pidguard"
# The same cycle without the kernel identity record (Pidfile::kernel_identity(false)).
printf '#!/bin/sh\nexec %q --no-kernel-identity "$@"\n' "$out/pidguard" >"$out/pidguard-no-record"
chmod +x "$out/pidguard-no-record"
cflags=(-O2 -Wall -Wextra)
gcc "${cflags[@]}" -o "$out/floor" "$root/bench/c/floor.c"
gcc "${cflags[@]}" -o "$out/protocol-c" "$root/bench/c/protocol.c"
programs=(pidguard pidguard-no-record floor protocol-c)
if [[ "$have_libbsd" -eq 1 ]]; then
  gcc "${cflags[@]}" -o "$out/libbsd" "$root/bench/c/libbsd.c" -lbsd
  programs+=(libbsd)
fi
if [[ "$have_pypid" -eq 1 ]]; then
  # shellcheck disable=SC2016 # $PYTHONPATH and "$@" are for the wrapper
  printf '#!/bin/sh\nPYTHONPATH=%q${PYTHONPATH:+:$PYTHONPATH}\nexport PYTHONPATH\nexec python3 %q "$@"\n' \
    "$pylib" "$root/bench/py/pidcycle.py" >"$out/python-pid"
  chmod +x "$out/python-pid"
  programs+=(python-pid)
fi

# (c) A directory on a tmpfs.
fstype() { stat -f -c %T "$1" 2>/dev/null || echo unknown; }
base=""
for candidate in "${BENCH_TMPFS:-}" /dev/shm "${XDG_RUNTIME_DIR:-}" /run; do
  if [[ -n "$candidate" && -d "$candidate" && -w "$candidate" && "$(fstype "$candidate")" == tmpfs ]]; then
    base="$candidate"
    break
  fi
done
if [[ -z "$base" ]]; then
  base="${TMPDIR:-/tmp}"
  log "warning: no writable tmpfs found (/dev/shm, \$XDG_RUNTIME_DIR, /run); using $base ($(fstype "$base")), numbers include that filesystem's cost"
fi
workdir="$(mktemp -d "$base/pidguard-cycle.XXXXXX")"
trap 'rm -rf -- "$workdir"' EXIT
pidfile="$workdir/cycle.pid"

# (d) Interleaved rounds, alternating the order.
declare -A results=()
run() {
  local prog="$1" line
  if ! line="$("$out/$prog" "$pidfile" "$n")"; then
    die "$prog failed (see above)"
  fi
  [[ "$line" =~ ^$prog\ ([0-9]+)\ ns/cycle$ ]] || die "$prog printed an unexpected line: '$line'"
  log "round $round: $line"
  results[$prog]+="${BASH_REMATCH[1]} "
}
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2 == 1)); then
    for ((i = 0; i < ${#programs[@]}; i++)); do run "${programs[i]}"; done
  else
    for ((i = ${#programs[@]} - 1; i >= 0; i--)); do run "${programs[i]}"; done
  fi
done

median() {
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR % 2) printf "%d\n", v[(NR + 1) / 2]
      else printf "%d\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 + 0.5
    }'
}
declare -A med=()
for prog in "${programs[@]}"; do
  med[$prog]="$(median "${results[$prog]}")"
  if [[ -n "${BENCH_SUMMARY:-}" ]]; then
    echo "cycle_${prog//-/_}_ns=${med[$prog]}" >>"$BENCH_SUMMARY"
  fi
done

# ratio A B LIMIT: prints "| a/b | ratio | <= limit | yes/no |".
ratio_row() {
  local label="$1" num="$2" den="$3" limit="$4"
  awk -v a="$num" -v b="$den" -v lim="$limit" -v label="$label" 'BEGIN {
    r = a / b
    printf "| %s | %.2f | ≤ %.2f | %s |\n", label, r, lim, (r <= lim ? "yes" : "no")
  }'
}

cpu="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
echo "| program | median ns/cycle | runs (ns/cycle, in order) |"
echo "| --- | ---: | --- |"
for prog in "${programs[@]}"; do
  runs="${results[$prog]% }"
  echo "| $prog | ${med[$prog]} | ${runs// /, } |"
done
if [[ "$have_libbsd" -eq 0 ]]; then
  echo "| libbsd | skipped | libbsd-dev not available |"
fi
if [[ "$have_pypid" -eq 0 ]]; then
  echo "| python-pid | skipped | the Python pid package is not available |"
fi
echo
echo "| ratio | value | target | met |"
echo "| --- | ---: | --- | --- |"
ratio_row "pidguard / floor" "${med[pidguard]}" "${med[floor]}" 1.3
# What recording the owner's pidfs inode (user.pidguard.pidfd_ino) costs.
ratio_row "pidguard / pidguard-no-record (the kernel identity record)" "${med[pidguard]}" "${med[pidguard-no-record]}" 1.1
# The same protocol in C: what any implementation of it costs here.
awk -v a="${med[pidguard]}" -v b="${med[protocol-c]}" 'BEGIN { printf "| pidguard / protocol-c (the same protocol in C) | %.2f | (reference) | |\n", a / b }'
ratio_row "protocol-c / floor (the 1.3 target applied to C)" "${med[protocol-c]}" "${med[floor]}" 1.3
if [[ "$have_libbsd" -eq 1 ]]; then
  ratio_row "pidguard / libbsd" "${med[pidguard]}" "${med[libbsd]}" 1.0
else
  echo "| pidguard / libbsd | n/a | ≤ 1.00 | not measured |"
fi
if [[ "$have_pypid" -eq 1 ]]; then
  awk -v a="${med[pidguard]}" -v b="${med[python-pid]}" 'BEGIN { printf "| pidguard / python-pid | %.2f | (no target) | |\n", a / b }'
fi
echo
echo "- N = $n cycles per run, $rounds rounds, order alternating each round"
echo "- machine: $(uname -srm), $(nproc) CPUs, ${cpu:-unknown CPU}"
echo "- directory: $base ($(fstype "$workdir"))"
