/*
 * libbsd PATH N: libbsd's pidfile(3) acquire/release cycle.
 *
 * Each cycle is the documented BSD daemon sequence:
 *
 *   pfh = pidfile_open(PATH, 0644, &otherpid);   open + lock (flopen)
 *   pidfile_write(pfh);                          truncate + write the PID
 *   pidfile_remove(pfh);                         verify + unlink + close
 *
 * About 1% of N cycles (at least one) run first as an untimed warm-up; then
 * N cycles are timed with clock_gettime(CLOCK_MONOTONIC) and one line is
 * printed, the mean in whole nanoseconds:
 *
 *   libbsd <ns> ns/cycle
 *
 * Every return value is checked: on error a message goes to stderr and the
 * exit status is 1 (2 for bad arguments). Needs libbsd-dev; link with -lbsd.
 * Built by bench/cycle.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <bsd/libutil.h>

static const char *prog = "libbsd";

#include "cycle_harness.h"

static void cycles(const char *path, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		pid_t otherpid = -1;
		struct pidfh *pfh = pidfile_open(path, 0644, &otherpid);

		if (pfh == NULL) {
			if (errno == EEXIST) {
				fprintf(stderr, "%s: %s is held by PID %ld\n", prog,
					path, (long)otherpid);
				exit(1);
			}
			die("pidfile_open", path);
		}
		if (pidfile_write(pfh) != 0)
			die("pidfile_write", path);
		if (pidfile_remove(pfh) != 0)
			die("pidfile_remove", path);
	}
}

int main(int argc, char **argv)
{
	uint64_t n = cycle_args(argc, argv);

	return time_cycles(argv[1], n, cycles);
}
