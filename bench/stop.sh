#!/usr/bin/env bash
# Stop-latency benchmark: `pidguard stop` vs `start-stop-daemon --stop`, on
# the same kind of process, measured side by side in one run.
#
# Usage: bench/stop.sh [K]        (K rounds, default 30)
#
# What is measured: the time from a TERM-obeying process's exit to the stop
# command returning. Each round, bench/c/stoptime.c (built with gcc into
# target/bench/) starts a fresh `sleep 1000`, writes its PID to a plain,
# unlocked PID file once it has started (as start-stop-daemon --make-pidfile
# would), reaps it the moment it exits (recording CLOCK_MONOTONIC), runs the
# stop command and records when it returns. Both tools run in every round,
# the order alternating each round, with these commands:
#
#   pidguard stop -p P --schedule TERM/5
#   start-stop-daemon --stop --retry TERM/5 --pidfile P
#
# Prints, as Markdown on stdout: per tool, the median and p90 of the
# exit-to-return latency and of the whole stop command (fork to reap), the
# median time from the command's start to the process's exit, how many
# rounds returned within 5 ms of the exit, the verdict on the target
# (pidguard median exit-to-return < 5 ms), the machine and the commands.
# Build output and per-round lines go to stderr.
#
# Exit status: 0 when everything ran, whether or not the target was met (this
# is a measurement, not a test); nonzero when a build, a stop command or the
# helper fails. No process is left running and the temporary directory is
# removed, also on interruption.
#
# Environment for bench/compare.sh: BENCH_TMPFS=DIR makes the temporary
# directory under DIR (default $TMPDIR or /tmp); BENCH_SUMMARY=FILE appends
# `stop_<tool>_ms=<median exit → return>` and `stop_<tool>_p90_ms=` lines.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
k="${1:-30}"

log() { printf 'stop.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[[ "$k" =~ ^[1-9][0-9]*$ ]] || die "K must be a positive integer, got '$k'"
command -v gcc >/dev/null || die "gcc is needed to build bench/c/stoptime.c"
command -v cargo >/dev/null || die "cargo is needed to build pidguard"
command -v sleep >/dev/null || die "sleep is needed (the target process)"

# (a) start-stop-daemon, from Debian's dpkg package.
ssd="$(command -v start-stop-daemon || true)"
if [[ -z "$ssd" ]]; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing dpkg (for start-stop-daemon)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg; } >&2 ||
      die "could not install dpkg"
    ssd="$(command -v start-stop-daemon || true)"
  fi
  [[ -n "$ssd" ]] || die "start-stop-daemon is not installed (Debian package dpkg)"
fi

# (b) Build pidguard (release) and the timing helper.
log "building pidguard (release)"
(cd "$root" && cargo build --release -p pidguard-cli) >&2
pidguard="${CARGO_TARGET_DIR:-$root/target}/release/pidguard"
[[ -x "$pidguard" ]] || die "no binary at $pidguard after the build"
out="$root/target/bench"
mkdir -p "$out"
stoptime="$out/stoptime"
gcc -O2 -pthread -Wall -Wextra -Werror -o "$stoptime" "$root/bench/c/stoptime.c"

# (c) A temporary directory; on exit, stop the helper if one runs (its target
# dies with it: PR_SET_PDEATHSIG) and remove the directory.
workdir="$(mktemp -d "${BENCH_TMPFS:-${TMPDIR:-/tmp}}/pidguard-stop.XXXXXX")"
helper=""
cleanup() {
  if [[ -n "$helper" ]]; then
    kill "$helper" 2>/dev/null || true
    wait "$helper" 2>/dev/null || true
  fi
  rm -rf -- "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pidfile="$workdir/target.pid"

tools=(pidguard ssd)
declare -A cmd_text=(
  [pidguard]="pidguard stop -p P --schedule TERM/5"
  [ssd]="start-stop-daemon --stop --retry TERM/5 --pidfile P"
)
# Per tool, space-separated microsecond values.
declare -A lat=() total=() startexit=()

measure() {
  local tool="$1" line
  local -a cmd
  case "$tool" in
    pidguard) cmd=("$pidguard" stop -p "$pidfile" --schedule TERM/5) ;;
    ssd) cmd=("$ssd" --stop --retry TERM/5 --pidfile "$pidfile") ;;
  esac
  rm -f -- "$pidfile"
  "$stoptime" "$pidfile" -- "${cmd[@]}" >"$workdir/line" &
  helper=$!
  wait "$helper" || die "stoptime failed for $tool (see above)"
  helper=""
  line="$(<"$workdir/line")"
  local re='^exit_to_return_us=(-?[0-9.]+|na) total_us=([0-9.]+) start_to_exit_us=(-?[0-9.]+|na) status=([0-9]+) target_exited=([01])$'
  [[ "$line" =~ $re ]] || die "stoptime printed an unexpected line: '$line'"
  log "round $round $tool: $line"
  [[ "${BASH_REMATCH[4]}" -eq 0 ]] || die "$tool exited with status ${BASH_REMATCH[4]}: ${cmd[*]}"
  [[ "${BASH_REMATCH[5]}" -eq 1 ]] || die "$tool returned 0 but the process was still running: ${cmd[*]}"
  lat[$tool]+="${BASH_REMATCH[1]} "
  total[$tool]+="${BASH_REMATCH[2]} "
  startexit[$tool]+="${BASH_REMATCH[3]} "
}

for ((round = 1; round <= k; round++)); do
  if ((round % 2 == 1)); then
    measure pidguard
    measure ssd
  else
    measure ssd
    measure pidguard
  fi
done

# summary "VALUES" median|p90|under LIMIT_US: microseconds in, milliseconds out
# (p90 is the nearest-rank percentile; "under" counts values below LIMIT_US).
summary() {
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk -v what="$2" -v lim="${3:-0}" '
    { v[NR] = $1 }
    END {
      if (what == "median") {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f\n", m / 1000
      } else if (what == "p90") {
        i = int(0.9 * NR); if (i < 0.9 * NR) i++
        printf "%.2f\n", v[i] / 1000
      } else {
        c = 0; for (j = 1; j <= NR; j++) if (v[j] < lim) c++
        printf "%d/%d\n", c, NR
      }
    }'
}

declare -A med=()
echo "| tool | command | exit → return, median | p90 | within 5 ms | whole command, median | p90 | start → exit, median |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for tool in "${tools[@]}"; do
  med[$tool]="$(summary "${lat[$tool]}" median)"
  if [[ -n "${BENCH_SUMMARY:-}" ]]; then
    printf 'stop_%s_ms=%s\nstop_%s_p90_ms=%s\n' "$tool" "${med[$tool]}" "$tool" "$(summary "${lat[$tool]}" p90)" >>"$BENCH_SUMMARY"
  fi
  printf '| %s | %s | %s ms | %s ms | %s | %s ms | %s ms | %s ms |\n' \
    "$tool" "\`${cmd_text[$tool]}\`" \
    "${med[$tool]}" "$(summary "${lat[$tool]}" p90)" "$(summary "${lat[$tool]}" under 5000)" \
    "$(summary "${total[$tool]}" median)" "$(summary "${total[$tool]}" p90)" \
    "$(summary "${startexit[$tool]}" median)"
done
echo
met="$(awk -v m="${med[pidguard]}" 'BEGIN { print (m < 5 ? "met" : "not met") }')"
echo "Target: pidguard median exit → return < 5 ms: **$met** (${med[pidguard]} ms; start-stop-daemon ${med[ssd]} ms)."
echo
cpu="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
ssd_version="$(dpkg-query -W -f '${Version}' dpkg 2>/dev/null || echo unknown)"
echo "- K = $k rounds, both tools each round, order alternating; target process: \`sleep 1000\`, PID file: plain and unlocked, written after it started"
echo "- machine: $(uname -srm), $(nproc) CPUs, ${cpu:-unknown CPU}"
echo "- $("$pidguard" --version 2>/dev/null || echo 'pidguard (version unknown)'), start-stop-daemon from dpkg $ssd_version"
