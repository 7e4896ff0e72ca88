/*
 * floor PATH N: the bare syscall floor of a PID file acquire/release cycle.
 *
 * Each cycle is the minimum a locked PID file needs, with no safety checks:
 *
 *   open(PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0644)
 *   flock(fd, LOCK_EX | LOCK_NB)
 *   write(fd, "<pid>\n")
 *   unlink(PATH)
 *   close(fd)
 *
 * About 1% of N cycles (at least one) run first as an untimed warm-up; then
 * N cycles are timed with clock_gettime(CLOCK_MONOTONIC) and one line is
 * printed, the mean in whole nanoseconds:
 *
 *   floor <ns> ns/cycle
 *
 * Every return value is checked: on error a message goes to stderr and the
 * exit status is 1 (2 for bad arguments). Built by bench/cycle.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "floor";

#include "cycle_harness.h"

/* "<pid>\n", made once in main. */
static char buf[32];
static size_t len;

static void cycles(const char *path, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		ssize_t w;

		if (fd < 0)
			die("open", path);
		if (flock(fd, LOCK_EX | LOCK_NB) != 0)
			die("flock", path);
		w = write(fd, buf, len);
		if (w < 0)
			die("write", path);
		if ((size_t)w != len) {
			fprintf(stderr, "%s: short write to %s\n", prog, path);
			exit(1);
		}
		if (unlink(path) != 0)
			die("unlink", path);
		if (close(fd) != 0)
			die("close", path);
	}
}

int main(int argc, char **argv)
{
	uint64_t n = cycle_args(argc, argv);
	int written = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());

	if (written < 0 || (size_t)written >= sizeof buf) {
		fprintf(stderr, "%s: cannot format the PID\n", prog);
		return 1;
	}
	len = (size_t)written;
	return time_cycles(argv[1], n, cycles);
}
