/*
 * protocol PATH N: pidguard's lock protocol written in C, as a reference
 * for the library cycle (bench/cycle.sh).
 *
 * Each cycle makes exactly the system calls pidguard makes (see "Syscalls
 * per cycle" in BENCHMARKS.md) and nothing else, so that the gap between
 * this program and bench/c/floor.c is the price of the protocol the core
 * issue asks for, whatever language implements it:
 *
 *   acquire: getpid()                                   the PID to write
 *            open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC)  an unnamed file
 *            pwrite(fd, "<pid>\n", 0)                   complete ...
 *            flock(fd, LOCK_EX | LOCK_NB)               ... and locked ...
 *            linkat(fd, "", AT_FDCWD, PATH, AT_EMPTY_PATH)  ... then named
 *   release: getpid()                                   not a forked child?
 *            fstat(fd), lstat(PATH)                     still our inode?
 *            unlink(PATH)                               while still locked
 *            close(fd)
 *
 * linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; without it the program
 * links /proc/self/fd/N instead (as pidguard does). About 1% of N cycles
 * (at least one) run first as an untimed warm-up; then N cycles are timed
 * and one line is printed, the mean in whole nanoseconds:
 *
 *   protocol-c <ns> ns/cycle
 *
 * Every return value is checked: on error a message goes to stderr and the
 * exit status is 1 (2 for bad arguments). Built by bench/cycle.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "protocol-c";

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

/* 1: linkat(AT_EMPTY_PATH) works; 0: link /proc/self/fd/N. */
static int empty_path = 1;

static void link_into_place(int fd, const char *path)
{
	char proc[64];

	if (empty_path) {
		if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0)
			return;
		if (errno != ENOENT && errno != EPERM)
			die("linkat", path);
		empty_path = 0;
	}
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0)
		die("linkat", path);
}

static void cycles(const char *dir, const char *path, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		char buf[32];
		struct stat ours, at_path;
		pid_t owner = getpid();
		int len = snprintf(buf, sizeof buf, "%ld\n", (long)owner);
		int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0644);

		if (fd < 0)
			die("open(O_TMPFILE)", dir);
		if (pwrite(fd, buf, (size_t)len, 0) != len)
			die("pwrite", path);
		if (flock(fd, LOCK_EX | LOCK_NB) != 0)
			die("flock", path);
		link_into_place(fd, path);

		if (getpid() != owner) {
			fprintf(stderr, "%s: released in a forked child\n", prog);
			exit(1);
		}
		if (fstat(fd, &ours) != 0)
			die("fstat", path);
		if (lstat(path, &at_path) != 0)
			die("lstat", path);
		if (ours.st_dev != at_path.st_dev || ours.st_ino != at_path.st_ino) {
			fprintf(stderr, "%s: %s is no longer ours\n", prog, path);
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
	char *copy;
	const char *dir;
	uint64_t n, start, elapsed;

	if (argc != 3)
		usage("expected exactly two arguments");
	if (argv[1][0] == '\0')
		usage("PATH is empty");
	n = parse_n(argv[2]);
	copy = strdup(argv[1]);
	if (copy == NULL)
		die("strdup", argv[1]);
	dir = dirname(copy);

	cycles(dir, argv[1], n / 100 > 0 ? n / 100 : 1);
	start = now_ns();
	cycles(dir, argv[1], n);
	elapsed = now_ns() - start;

	if (printf("%s %" PRIu64 " ns/cycle\n", prog, (elapsed + n / 2) / n) < 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "%s: cannot write the result: %s\n", prog, strerror(errno));
		return 1;
	}
	free(copy);
	return 0;
}
