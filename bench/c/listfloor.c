/* The floor for `pidguard list DIR`: for each entry of DIR, open the file,
 * read it, probe its lock, close it and call kill(pid, 0). No identity
 * checks, no safety checks. Prints `listfloor <ns> ns/file` for the whole
 * loop (including readdir). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: listfloor DIR\n");
        return 2;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    int dfd = dirfd(d);
    long files = 0, alive = 0, locked = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
            continue;
        char buf[65];
        ssize_t n = read(fd, buf, 64);
        if (flock(fd, LOCK_SH | LOCK_NB) == 0)
            flock(fd, LOCK_UN);
        else
            locked++;
        close(fd);
        files++;
        if (n <= 0)
            continue;
        buf[n] = 0;
        long pid = strtol(buf, NULL, 10);
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
            alive++;
    }
    closedir(d);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    fprintf(stderr, "listfloor: %ld files, %ld alive, %ld locked\n", files, alive, locked);
    printf("listfloor %.0f ns/file\n", files ? ns / (double)files : 0.0);
    return 0;
}
