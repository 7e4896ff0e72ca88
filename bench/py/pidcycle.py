#!/usr/bin/env python3
"""pidcycle.py PATH N: the Python `pid` package's acquire/release cycle.

Each cycle enters and leaves one `pid.PidFile` as a context manager, the
package's documented use:

    with pidfile:          # open(a+), flock(LOCK_EX|LOCK_NB), check the old
        pass               # content, fchmod, truncate, write "<pid>\\n"
                           # on exit: close, then isfile + remove

The PidFile object is made once, outside the loop (as
crates/pidguard/examples/cycle.rs makes its builder once), with the package's
defaults, from PATH's directory and file name. About 1% of N cycles (at
least one) run first as an untimed warm-up; then N cycles are timed with
time.perf_counter_ns() and one line is printed, the mean in whole
nanoseconds, the same way the C harnesses in bench/c/ do:

    python-pid <ns> ns/cycle

Exit status: 0 on success, 1 when a cycle fails or the `pid` package is
missing (`pip install pid`), 2 on bad arguments. Run by bench/compare.sh.
"""

import os
import sys
import time

PROG = "python-pid"
USAGE = "usage: pidcycle.py PATH N   (N: number of cycles, >= 1)"


def usage(why):
    print(f"{PROG}: {why}\n{USAGE}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    if len(argv) != 3:
        usage("expected exactly two arguments")
    path, n = argv[1], argv[2]
    if not path:
        usage("PATH is empty")
    if not n.isdigit() or int(n) == 0:
        usage(f"N must be a positive integer, got {n!r}")
    return path, int(n)


def cycles(pidfile, n):
    for _ in range(n):
        with pidfile:
            pass


def main(argv):
    path, n = parse_args(argv)
    try:
        from pid import PidFile
    except ImportError as exc:
        print(
            f"{PROG}: the Python `pid` package is not installed ({exc}); "
            "install it with `pip install pid`",
            file=sys.stderr,
        )
        return 1
    path = os.path.abspath(path)
    pidfile = PidFile(pidname=os.path.basename(path), piddir=os.path.dirname(path))
    try:
        cycles(pidfile, max(n // 100, 1))
        start = time.perf_counter_ns()
        cycles(pidfile, n)
        elapsed = time.perf_counter_ns() - start
    except Exception as exc:  # report any failure of the package, with the path
        print(f"{PROG}: a cycle on {path} failed: {exc!r}", file=sys.stderr)
        return 1
    if os.path.exists(path):
        print(f"{PROG}: {path} was left behind after the last cycle", file=sys.stderr)
        return 1
    print(f"{PROG} {(elapsed + n // 2) // n} ns/cycle", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
