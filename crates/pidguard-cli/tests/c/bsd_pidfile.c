/*
 * A daemon written after the BSD pidfile(3) manual's example, linked
 * against libbsd: what it sees of a pidguard-held file, and a holder for
 * pidguard to see. Compiled by tests/interop.rs with `gcc ... -lbsd`.
 *
 *   bsd_pidfile open PATH        pidfile_open(PATH): prints "EEXIST <pid>"
 *                                (another instance holds it), "acquired"
 *                                (then releases it again), or "errno <n>"
 *   bsd_pidfile hold PATH READY  pidfile_open + pidfile_write, creates
 *                                READY, then sleeps until killed
 *   bsd_pidfile poll PATH N      pidfile_open(PATH) N times (a file another
 *                                process holds and rewrites meanwhile):
 *                                prints "EEXIST <pid> <count>" for each PID
 *                                it reported, "errno <n> <count> <message>"
 *                                for each failure, "acquired <count>" (each
 *                                closed again, the file left in place)
 */
#include <bsd/libutil.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One kind of result of pidfile_open() and how often it came. */
struct seen {
	int err;	/* 0 for EEXIST (then pid), -1 for acquired, else errno */
	long pid;
	long count;
};

static void count(struct seen *s, int *n, int err, long pid)
{
	for (int i = 0; i < *n; i++) {
		if (s[i].err == err && s[i].pid == pid) {
			s[i].count++;
			return;
		}
	}
	if (*n < 64)
		s[(*n)++] = (struct seen){ err, pid, 1 };
}

static int poll_open(const char *path, long n)
{
	struct seen seen[64];
	int kinds = 0;
	for (long i = 0; i < n; i++) {
		pid_t otherpid = -1;
		struct pidfh *pfh = pidfile_open(path, 0644, &otherpid);
		if (pfh != NULL) {
			count(seen, &kinds, -1, 0);
			pidfile_close(pfh);
		} else if (errno == EEXIST) {
			count(seen, &kinds, 0, (long)otherpid);
		} else {
			count(seen, &kinds, errno, 0);
		}
	}
	for (int i = 0; i < kinds; i++) {
		if (seen[i].err == 0)
			printf("EEXIST %ld %ld\n", seen[i].pid, seen[i].count);
		else if (seen[i].err == -1)
			printf("acquired %ld\n", seen[i].count);
		else
			printf("errno %d %ld %s\n", seen[i].err,
			    seen[i].count, strerror(seen[i].err));
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "poll") == 0)
		return poll_open(argv[2], atol(argv[3]));
	if (argc < 3) {
		fprintf(stderr, "usage: %s open|hold|poll PATH [READY|N]\n",
		    argv[0]);
		return 2;
	}
	pid_t otherpid = -1;
	struct pidfh *pfh = pidfile_open(argv[2], 0644, &otherpid);
	if (pfh == NULL) {
		if (errno == EEXIST) {
			printf("EEXIST %ld\n", (long)otherpid);
			return 0;
		}
		printf("errno %d %s\n", errno, strerror(errno));
		return 1;
	}
	if (strcmp(argv[1], "open") == 0) {
		printf("acquired\n");
		pidfile_remove(pfh);
		return 0;
	}
	if (argc < 4 || pidfile_write(pfh) != 0) {
		perror("pidfile_write");
		return 1;
	}
	int fd = open(argv[3], O_WRONLY | O_CREAT, 0644);
	if (fd < 0) {
		perror(argv[3]);
		return 1;
	}
	close(fd);
	for (;;)
		pause();
}
