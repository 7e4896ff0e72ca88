#!/usr/bin/env bash
# pidguard against the tools people use today, all in one run.
#
# Usage: bench/compare.sh            (full run, about 2-4 minutes on 2 CPUs)
#        QUICK=1 bench/compare.sh    (small N everywhere: checks that it works)
#
# Measures, in one run, on a fresh `mktemp -d` directory on /dev/shm (a
# tmpfs; removed at the end):
#
#   1. library cycle (acquire + release): pidguard (examples/cycle.rs) vs
#      libbsd pidfile_open/write/remove vs the Python `pid` package vs the
#      bare syscall floor vs pidguard's protocol in C -- bench/cycle.sh;
#   2. the CLI, with hyperfine: `pidguard run --exec -p P -- /bin/true`
#      (the default build, and the same linked statically),
#      `pidguard run -p P -- /bin/true` (supervise), `flock -n P /bin/true`,
#      `start-stop-daemon --start --make-pidfile --pidfile P --exec /bin/true`
#      and `/bin/true` alone;
#   3. stop latency: `pidguard stop` vs `start-stop-daemon --stop --retry`
#      -- bench/stop.sh;
#   4. `pidguard list` over 10,000 files vs the C floor loop -- bench/list.sh;
#   5. peak RSS (`/usr/bin/time -v`, "Maximum resident set size") of
#      `pidguard run`, `pidguard status` and `pidguard list` over the
#      10,000-file directory.
#
# Prints each part's own Markdown table, then one summary table:
# measurement | pidguard | comparison | ratio | target | met/MISSED. All
# ratios come from this run. Progress and build output go to stderr.
#
# What it installs when missing (only as root, with apt-get / pip; otherwise
# it says what is missing and skips the parts that need it):
#   apt: libbsd-dev (libbsd harness), hyperfine (CLI), time (/usr/bin/time),
#        dpkg (start-stop-daemon); pip: pid (the Python `pid` package, with
#        `pip install --target target/bench/pylib pid`, by bench/cycle.sh).
#
# Knobs (environment; QUICK=1 changes the defaults in brackets):
#   CYCLE_N=200000 [2000]  CYCLE_ROUNDS=5 [2]   cycles per run, rounds
#   HF_RUNS=150 [20]  HF_WARMUP=20 [3]  HF_ROUNDS=9 [1]   hyperfine (rounds alternate the order)
#   STOP_K=30 [4]                                stop rounds
#   LIST_N=10000 [1000]  LIST_ROUNDS=5 [2]      files, rounds
#
# Exit status: 0 when everything ran, whether or not targets were met (this
# is a measurement, not a test); nonzero when a build or a program fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'compare.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if [[ "${QUICK:-0}" == 1 ]]; then
  : "${CYCLE_N:=2000}" "${CYCLE_ROUNDS:=2}" "${HF_RUNS:=20}" "${HF_WARMUP:=3}" "${HF_ROUNDS:=1}"
  : "${STOP_K:=4}" "${LIST_N:=1000}" "${LIST_ROUNDS:=2}"
else
  : "${CYCLE_N:=200000}" "${CYCLE_ROUNDS:=5}" "${HF_RUNS:=150}" "${HF_WARMUP:=20}" "${HF_ROUNDS:=9}"
  : "${STOP_K:=30}" "${LIST_N:=10000}" "${LIST_ROUNDS:=5}"
fi
for v in CYCLE_N CYCLE_ROUNDS HF_RUNS HF_ROUNDS STOP_K LIST_N LIST_ROUNDS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[[ "$HF_WARMUP" =~ ^[0-9]+$ ]] || die "HF_WARMUP must be a non-negative integer, got '$HF_WARMUP'"
((LIST_N > 10)) || die "LIST_N must be above 10 (10 files are locked holders), got $LIST_N"

command -v cargo >/dev/null || die "cargo is needed to build pidguard"
command -v gcc >/dev/null || die "gcc is needed to build bench/c/*.c"
command -v python3 >/dev/null || die "python3 is needed (hyperfine JSON, the summary table)"

# (a) Packages. Missing ones are installed when root; otherwise reported.
started=$(date +%s)
is_root=0
[[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null && is_root=1
apt_missing=()
[[ -r /usr/include/bsd/libutil.h ]] || apt_missing+=(libbsd-dev)
command -v hyperfine >/dev/null || apt_missing+=(hyperfine)
[[ -x /usr/bin/time ]] || apt_missing+=(time)
command -v start-stop-daemon >/dev/null || apt_missing+=(dpkg)
if ((${#apt_missing[@]})); then
  if ((is_root)); then
    log "installing with apt-get: ${apt_missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}"; } >&2 ||
      log "warning: apt-get install ${apt_missing[*]} failed; the parts that need them are skipped"
  else
    log "missing Debian packages: ${apt_missing[*]} (not root, so not installed: run 'sudo apt-get install ${apt_missing[*]}'); the parts that need them are skipped"
  fi
fi
# (The Python `pid` package is installed by bench/cycle.sh, into
# target/bench/pylib, the same way.)
hyperfine="$(command -v hyperfine || true)"
ssd="$(command -v start-stop-daemon || true)"
flock="$(command -v flock || true)"
have_time=0
[[ -x /usr/bin/time ]] && have_time=1

# (b) Build everything once (the part scripts rebuild nothing then).
log "building pidguard (release) and the cycle example"
cargo build --release -p pidguard-cli >&2
cargo build --release -p pidguard --example cycle >&2
pg="${CARGO_TARGET_DIR:-$root/target}/release/pidguard"
[[ -x "$pg" ]] || die "no binary at $pg after the build"
# hyperfine -N splits its command lines on spaces.
[[ "$pg" != *[[:space:]]* ]] || die "the path $pg contains whitespace, which hyperfine -N cannot pass; set CARGO_TARGET_DIR to a path without spaces"
mkdir -p "$root/target/bench"
# The same binary linked statically (glibc's static libraries, Debian
# libc6-dev), as README.md's "Installing" shows: start-up without the
# dynamic loader. Its own target directory, so the default build stays.
pg_static=""
static_dir="$root/target/bench/static"
log "building pidguard linked statically (cargo rustc … -C target-feature=+crt-static)"
if CARGO_TARGET_DIR="$static_dir" cargo rustc --release -p pidguard-cli --bin pidguard -- \
  -C target-feature=+crt-static >&2; then
  pg_static="$static_dir/release/pidguard"
else
  log "warning: the static build failed (it needs glibc's static libraries: apt-get install libc6-dev); its rows are skipped"
fi

# (c) A fresh directory on a tmpfs, removed at the end.
base=/dev/shm
if [[ "$(stat -f -c %T "$base" 2>/dev/null)" != tmpfs || ! -w "$base" ]]; then
  base="${TMPDIR:-/tmp}"
  log "warning: /dev/shm is not a writable tmpfs; using $base ($(stat -f -c %T "$base")): numbers include that filesystem"
fi
work="$(mktemp -d "$base/pidguard-compare.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT
[[ "$work" != *[[:space:]]* ]] || die "the temporary directory $work contains whitespace, which hyperfine -N cannot pass; set TMPDIR to a path without spaces"
export BENCH_TMPFS="$work" BENCH_SUMMARY="$work/summary"
: >"$BENCH_SUMMARY"

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
  log "warning: the machine is busy (load average $load_start on $(nproc) CPUs): absolute times will be inflated; the ratios are still from this run"
fi

# (1) Library cycle.
log "1/5 library cycle: N=$CYCLE_N, $CYCLE_ROUNDS rounds"
ROUNDS="$CYCLE_ROUNDS" bench/cycle.sh "$CYCLE_N" >"$work/cycle.md"

# (2) CLI with hyperfine, HF_ROUNDS rounds, the order reversed every other one.
# add_cli NAME COMMAND DISPLAY: COMMAND is split on spaces (no shell).
declare -a hf_names=() hf_cmds=() hf_show=()
add_cli() {
  hf_names+=("$1")
  hf_cmds+=("$2")
  hf_show+=("$3")
}
add_cli "pidguard run --exec" "$pg run --exec -p $work/exec.pid -- /bin/true" \
  "pidguard run --exec -p P -- /bin/true"
if [[ -n "$pg_static" ]]; then
  add_cli "pidguard run --exec (static)" "$pg_static run --exec -p $work/exec-static.pid -- /bin/true" \
    "pidguard run --exec -p P -- /bin/true (static build)"
fi
add_cli "pidguard run" "$pg run -p $work/supervise.pid -- /bin/true" \
  "pidguard run -p P -- /bin/true"
if [[ -n "$pg_static" ]]; then
  add_cli "pidguard run (static)" "$pg_static run -p $work/supervise-static.pid -- /bin/true" \
    "pidguard run -p P -- /bin/true (static build)"
fi
if [[ -n "$flock" ]]; then
  add_cli "flock -n" "$flock -n $work/flock.pid /bin/true" "flock -n P /bin/true"
fi
if [[ -n "$ssd" ]]; then
  add_cli "start-stop-daemon --start" "$ssd --start --make-pidfile --pidfile $work/ssd.pid --exec /bin/true" \
    "start-stop-daemon --start --make-pidfile --pidfile P --exec /bin/true"
fi
add_cli "/bin/true" "/bin/true" "/bin/true"
if [[ -n "$hyperfine" ]]; then
  # Every command must work once by hand first (hyperfine would stop anyway).
  for ((i = 0; i < ${#hf_cmds[@]}; i++)); do
    # shellcheck disable=SC2086 # the command lines are split on purpose
    ${hf_cmds[i]} >/dev/null || die "'${hf_names[i]}' failed: ${hf_cmds[i]}"
  done
  for ((round = 1; round <= HF_ROUNDS; round++)); do
    log "2/5 CLI, hyperfine round $round/$HF_ROUNDS: $HF_RUNS runs each, $HF_WARMUP warm-up"
    args=()
    for ((j = 0; j < ${#hf_cmds[@]}; j++)); do
      if ((round % 2)); then i=$j; else i=$((${#hf_cmds[@]} - 1 - j)); fi
      args+=(-n "${hf_names[i]}" "${hf_cmds[i]}")
    done
    "$hyperfine" -N --style basic --warmup "$HF_WARMUP" --runs "$HF_RUNS" \
      --export-json "$work/hf.$round.json" "${args[@]}" >&2
  done
else
  log "2/5 CLI: skipped, hyperfine is not installed (apt-get install hyperfine)"
fi

# (3) Stop latency.
if [[ -n "$ssd" ]]; then
  log "3/5 stop latency: K=$STOP_K"
  bench/stop.sh "$STOP_K" >"$work/stop.md"
else
  log "3/5 stop latency: skipped, start-stop-daemon is not installed (apt-get install dpkg)"
  echo "(skipped: no start-stop-daemon)" >"$work/stop.md"
fi

# (4) list over LIST_N files (also peak RSS of list and status, in list.sh).
log "4/5 list: N=$LIST_N, $LIST_ROUNDS rounds"
ROUNDS="$LIST_ROUNDS" bench/list.sh "$LIST_N" >"$work/list.md"

# (5) Peak RSS of `pidguard run` (and of start-stop-daemon / flock, for
# comparison): the largest of three runs.
maxrss() {
  local best=0 kib
  for _ in 1 2 3; do
    kib="$(/usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': *' '/Maximum resident set size/ { print $2 }')"
    [[ "$kib" =~ ^[0-9]+$ ]] || die "no peak RSS from /usr/bin/time -v $*"
    if ((kib > best)); then best=$kib; fi
  done
  echo "$best"
}
if ((have_time)); then
  log "5/5 peak RSS"
  {
    echo "rss_run_kib=$(maxrss "$pg" run -p "$work/rss.pid" -- /bin/true)"
    echo "rss_run_exec_kib=$(maxrss "$pg" run --exec -p "$work/rss-exec.pid" -- /bin/true)"
    if [[ -n "$ssd" ]]; then
      echo "rss_ssd_kib=$(maxrss "$ssd" --start --make-pidfile --pidfile "$work/rss-ssd.pid" --exec /bin/true)"
    fi
    if [[ -n "$flock" ]]; then
      echo "rss_flock_kib=$(maxrss "$flock" -n "$work/rss-flock.pid" /bin/true)"
    fi
    echo "rss_true_kib=$(maxrss /bin/true)"
  } >>"$BENCH_SUMMARY"
else
  log "5/5 peak RSS: skipped, /usr/bin/time is not installed (apt-get install time)"
fi

# Report.
cpu="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
elapsed=$(($(date +%s) - started))
echo "## bench/compare.sh$([[ "${QUICK:-0}" == 1 ]] && echo ' (QUICK=1)')"
echo
echo "### 1. Library cycle (bench/cycle.sh $CYCLE_N, ROUNDS=$CYCLE_ROUNDS)"
echo
cat "$work/cycle.md"
echo
echo "### 2. CLI (hyperfine -N, $HF_ROUNDS × $HF_RUNS runs, $HF_WARMUP warm-up)"
echo
printf '%s\n' "${hf_names[@]}" >"$work/hf.names"
printf '%s\n' "${hf_show[@]}" >"$work/hf.cmds"
python3 - "$work" "$HF_ROUNDS" <<'PY'
import json, re, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
names = open(f"{work}/hf.names").read().splitlines()
cmds = open(f"{work}/hf.cmds").read().splitlines()
means = {n: [] for n in names}
for r in range(1, rounds + 1):
    try:
        data = json.load(open(f"{work}/hf.{r}.json"))
    except FileNotFoundError:
        continue
    for res in data["results"]:
        means[res["command"]].append(res["mean"])
out = open(f"{work}/summary", "a")
print("| command | mean of each round (ms) | median (ms) |")
print("| --- | --- | ---: |")
for n, c in zip(names, cmds):
    if not means[n]:
        print(f"| `{c}` | not measured | |")
        continue
    med = statistics.median(means[n])
    print(f"| `{c}` | {', '.join(f'{m * 1e3:.3f}' for m in means[n])} | {med * 1e3:.3f} |")
    key = re.sub(r"[^a-z0-9]+", "_", n).strip("_")
    out.write(f"cli_{key}_ms={med * 1e3:.4f}\n")
PY
echo
echo "### 3. Stop latency (bench/stop.sh $STOP_K)"
echo
cat "$work/stop.md"
echo
echo "### 4. list (bench/list.sh $LIST_N, ROUNDS=$LIST_ROUNDS)"
echo
cat "$work/list.md"
echo
echo "### Summary"
echo
python3 - "$BENCH_SUMMARY" "$LIST_N" <<'PY'
import sys
vals = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().partition("=")
    if v:
        try:
            vals[k] = float(v)
        except ValueError:
            pass
list_n = int(sys.argv[2])

def us(ns): return f"{ns / 1000:.1f} µs"
def ms(x): return f"{x:.2f} ms"
def kib(k): return f"{k / 1024:.2f} MiB"

rows = []
def row(what, a, b, fmt, ratio_max=None, target="—", absolute=None, comp=""):
    """a: pidguard, b: comparison; ratio_max: target on a/b; absolute: (limit, ok)."""
    if a not in vals:
        rows.append((what, "not measured", comp or "", "", target, "not measured"))
        return
    av = vals[a]
    bv = vals.get(b) if b else None
    ratio = f"{av / bv:.2f}" if bv else ""
    comp_text = f"{comp}{fmt(bv)}" if bv is not None else (comp or "—")
    verdict = "—"
    if ratio_max is not None:
        verdict = "not measured" if bv is None else ("met" if av / bv <= ratio_max else "MISSED")
    if absolute is not None:
        verdict = "met" if av < absolute else "MISSED"
    rows.append((what, fmt(av), comp_text, ratio, target, verdict))

row("cycle vs libbsd", "cycle_pidguard_ns", "cycle_libbsd_ns", us, 1.0, "≤ 1.00×", comp="libbsd ")
row("cycle vs floor", "cycle_pidguard_ns", "cycle_floor_ns", us, 1.3, "≤ 1.30×", comp="C floor ")
row("cycle vs the same protocol in C", "cycle_pidguard_ns", "cycle_protocol_c_ns", us, comp="protocol-c ")
row("cycle with the kernel identity record vs without", "cycle_pidguard_ns", "cycle_pidguard_no_record_ns", us, 1.1, "≤ 1.10×", comp="no record ")
row("the same protocol in C vs floor", "cycle_protocol_c_ns", "cycle_floor_ns", us, comp="C floor ")
row("cycle vs Python pid", "cycle_pidguard_ns", "cycle_python_pid_ns", us, comp="python pid ")
row("run --exec vs start-stop-daemon", "cli_pidguard_run_exec_ms", "cli_start_stop_daemon_start_ms", ms, 1.0, "≤ 1.00×", comp="ssd --start ")
row("run --exec, static build, vs start-stop-daemon", "cli_pidguard_run_exec_static_ms", "cli_start_stop_daemon_start_ms", ms, 1.0, "≤ 1.00×", comp="ssd --start ")
row("run --exec vs flock -n", "cli_pidguard_run_exec_ms", "cli_flock_n_ms", ms, comp="flock -n ")
row("run --exec vs /bin/true", "cli_pidguard_run_exec_ms", "cli_bin_true_ms", ms, comp="/bin/true ")
row("run (supervise) vs start-stop-daemon", "cli_pidguard_run_ms", "cli_start_stop_daemon_start_ms", ms, comp="ssd --start ")
row("run (supervise) vs flock -n", "cli_pidguard_run_ms", "cli_flock_n_ms", ms, 1.1, "≤ 1.10×", comp="flock -n ")
row("run (supervise), static build, vs flock -n", "cli_pidguard_run_static_ms", "cli_flock_n_ms", ms, 1.1, "≤ 1.10×", comp="flock -n ")
row("stop: exit → return (median)", "stop_pidguard_ms", "stop_ssd_ms", ms, target="< 5 ms", absolute=5.0, comp="ssd --stop ")
row("stop: exit → return (p90)", "stop_pidguard_p90_ms", "stop_ssd_p90_ms", ms, comp="ssd --stop ")
row(f"list, {list_n} files (per file)", "list_pidguard_ns", "list_floor_ns", us, 3.0, "≤ 3.00×", comp="C floor ")
row("peak RSS: run (supervise)", "rss_run_kib", "rss_ssd_kib", kib, target="< 4 MiB", absolute=4096, comp="ssd --start ")
row("peak RSS: run --exec", "rss_run_exec_kib", "rss_flock_kib", kib, target="< 4 MiB", absolute=4096, comp="flock -n ")
row("peak RSS: status", "rss_status_kib", "rss_true_kib", kib, target="< 4 MiB", absolute=4096, comp="/bin/true ")
row(f"peak RSS: list, {list_n} files", "rss_list_kib", None, kib, target="< 4 MiB", absolute=4096)

print("| measurement | pidguard | comparison | ratio | target | met |")
print("| --- | ---: | ---: | ---: | --- | --- |")
for r in rows:
    print("| " + " | ".join(r) + " |")
PY
echo
echo "- machine: $(uname -srm), $(nproc) CPUs, ${cpu:-unknown CPU}; load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- directory: $base ($(stat -f -c %T "$base")); $("$pg" --version); hyperfine ${hyperfine:+$("$hyperfine" --version | awk '{print $2}')}; dpkg $(dpkg-query -W -f '${Version}' dpkg 2>/dev/null || echo unknown); $(python3 --version 2>&1) ($(command -v python3))"
echo "- took ${elapsed} s"
