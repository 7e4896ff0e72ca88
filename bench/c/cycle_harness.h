/*
 * What the cycle programs (floor.c, protocol.c, libbsd.c) share: argument
 * checks, error exits, the clock, and the timed run. Include it after
 * defining `static const char *prog` (the name printed in results and
 * messages).
 *
 * time_cycles(path, n, cycles) runs about 1% of n cycles (at least one) as
 * an untimed warm-up, then n cycles timed with clock_gettime
 * (CLOCK_MONOTONIC), and prints one line, the mean in whole nanoseconds:
 *
 *   <prog> <ns> ns/cycle
 *
 * On error a message goes to stderr and the exit status is 1 (2 for bad
 * arguments).
 */
#ifndef PIDGUARD_BENCH_CYCLE_HARNESS_H
#define PIDGUARD_BENCH_CYCLE_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Checks `prog PATH N` and returns N. */
static uint64_t cycle_args(int argc, char **argv)
{
	if (argc != 3)
		usage("expected exactly two arguments");
	if (argv[1][0] == '\0')
		usage("PATH is empty");
	return parse_n(argv[2]);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		die("clock_gettime", "CLOCK_MONOTONIC");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The warm-up, the timed run and the result line; returns main's status. */
static int time_cycles(const char *path, uint64_t n,
		       void (*cycles)(const char *path, uint64_t n))
{
	uint64_t start, elapsed;

	cycles(path, n / 100 > 0 ? n / 100 : 1);
	start = now_ns();
	cycles(path, n);
	elapsed = now_ns() - start;

	if (printf("%s %" PRIu64 " ns/cycle\n", prog, (elapsed + n / 2) / n) < 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write the result: %s\n", prog, strerror(errno));
		return 1;
	}
	return 0;
}

#endif
