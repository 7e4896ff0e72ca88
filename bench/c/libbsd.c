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

static void usage(const char *why)
{
	fprintf(stderr, "%s: %s\nusage: %s PATH N   (N: number of cycles, >= 1)\n",
		prog, why, prog);
	exit(2);
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "%s: %s %s: %s\n", prog, what, path, strerror(errno));
	exit(1);
}

static uint64_t parse_n(const char *s)
{
	char *end;
	unsigned long long n;

	if (*s < '0' || *s > '9')
		usage("N must be a positive integer");
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || n == 0)
		usage("N must be a positive integer");
	return (uint64_t)n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		die("clock_gettime", "CLOCK_MONOTONIC");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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
	uint64_t n, start, elapsed;

	if (argc != 3)
		usage("expected exactly two arguments");
	if (argv[1][0] == '\0')
		usage("PATH is empty");
	n = parse_n(argv[2]);

	cycles(argv[1], n / 100 > 0 ? n / 100 : 1);
	start = now_ns();
	cycles(argv[1], n);
	elapsed = now_ns() - start;

	if (printf("%s %" PRIu64 " ns/cycle\n", prog, (elapsed + n / 2) / n) < 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write the result: %s\n", prog, strerror(errno));
		return 1;
	}
	return 0;
}
