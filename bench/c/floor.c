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

static void cycles(const char *path, const char *buf, size_t len, uint64_t n)
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
	char buf[32];
	int len;
	uint64_t n, start, elapsed;

	if (argc != 3)
		usage("expected exactly two arguments");
	if (argv[1][0] == '\0')
		usage("PATH is empty");
	n = parse_n(argv[2]);

	len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (len < 0 || (size_t)len >= sizeof buf) {
		fprintf(stderr, "%s: cannot format the PID\n", prog);
		return 1;
	}

	cycles(argv[1], buf, (size_t)len, n / 100 > 0 ? n / 100 : 1);
	start = now_ns();
	cycles(argv[1], buf, (size_t)len, n);
	elapsed = now_ns() - start;

	if (printf("%s %" PRIu64 " ns/cycle\n", prog, (elapsed + n / 2) / n) < 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write the result: %s\n", prog, strerror(errno));
		return 1;
	}
	return 0;
}
