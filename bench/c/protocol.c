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
 *            pwrite(fd, "<pid>", 0)                     complete ...
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

#include "cycle_harness.h"

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

/* PATH's directory, for O_TMPFILE: set once in main. */
static const char *dir;

static void cycles(const char *path, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		char buf[32];
		struct stat ours, at_path;
		pid_t owner = getpid();
		int len = snprintf(buf, sizeof buf, "%ld", (long)owner);
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
	uint64_t n = cycle_args(argc, argv);
	char *copy = strdup(argv[1]);

	if (copy == NULL)
		die("strdup", argv[1]);
	dir = dirname(copy);
	return time_cycles(argv[1], n, cycles);
}
