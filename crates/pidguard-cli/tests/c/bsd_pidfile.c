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
 */
#include <bsd/libutil.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s open|hold PATH [READY]\n", argv[0]);
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
