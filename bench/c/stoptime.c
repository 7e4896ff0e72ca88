/*
 * stoptime PIDFILE -- STOPCMD [ARGS...]: one stop-latency measurement.
 *
 *   1. Forks a target, `sleep 1000` (a process that obeys SIGTERM: default
 *      disposition, signals unblocked, killed if stoptime dies first), and
 *      waits until its exec has happened (a close-on-exec pipe reaches EOF).
 *   2. Writes "<pid>\n" to PIDFILE (a plain file, unlocked, written after the
 *      target started, as start-stop-daemon --make-pidfile would), then lets
 *      the target settle for 10 ms.
 *   3. Starts a reaper thread that blocks in waitpid(target) and records
 *      CLOCK_MONOTONIC the moment it returns: the target's exit, within the
 *      thread's wake-up time. Reaping at once matters: a zombie still answers
 *      kill(pid, 0), so a stopper that polls with it would wait for the reap.
 *   4. Records t_start, forks and execs STOPCMD (its stdout goes to stderr, so
 *      stdout carries only the result), waits for it and records t_end.
 *   5. Gives the target up to 2 s more to exit (a stopper can return early,
 *      e.g. on an error); if it is still alive it is SIGKILLed and reaped.
 *
 * Prints one line on stdout (times in microseconds, 1 decimal):
 *
 *   exit_to_return_us=<t_end - t_exit> total_us=<t_end - t_start>
 *   start_to_exit_us=<t_exit - t_start> status=<STOPCMD exit status>
 *   target_exited=1
 *
 * (one line; exit_to_return_us may be slightly negative only if the reaper
 * thread woke later than STOPCMD was reaped). When the target did not exit by
 * itself, the line is
 *
 *   exit_to_return_us=na total_us=<...> start_to_exit_us=na status=<...>
 *   target_exited=0
 *
 * status is the exit code, or 128+N when STOPCMD was killed by signal N.
 * Exit status of stoptime: 0 when it measured (whatever STOPCMD's status), 1
 * on a system call failure, 2 on bad arguments. Built by bench/stop.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t target;
static long long t_exit_ns;

static long long now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("stoptime: clock_gettime");
        exit(1);
    }
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    int e = errno;
    fprintf(stderr, "stoptime: %s: %s\n", what, strerror(e));
    if (target > 0) {
        kill(target, SIGKILL);
        waitpid(target, NULL, 0);
    }
    exit(1);
}

/* Reaper: waits for the target and records when it exited. */
static void *reaper(void *arg)
{
    (void)arg;
    int st;
    pid_t r;
    do {
        r = waitpid(target, &st, 0);
    } while (r < 0 && errno == EINTR);
    long long t = now_ns();
    if (r != target) {
        perror("stoptime: waitpid(target)");
        t = -1;
    }
    __atomic_store_n(&t_exit_ns, t, __ATOMIC_SEQ_CST);
    return NULL;
}

/* In a freshly forked child: default signal dispositions, nothing blocked. */
static void reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
}

static void write_pidfile(const char *path, pid_t pid)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)pid);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open(PIDFILE)");
    if (write(fd, buf, (size_t)n) != n)
        die("write(PIDFILE)");
    if (close(fd) != 0)
        die("close(PIDFILE)");
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: stoptime PIDFILE -- STOPCMD [ARGS...]\n");
        return 2;
    }
    const char *pidfile = argv[1];
    char **stopcmd = argv + 3;
    pid_t me = getpid();

    /* 1. The target, `sleep 1000`. */
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) != 0)
        die("pipe2");
    target = fork();
    if (target < 0)
        die("fork(target)");
    if (target == 0) {
        close(gate[0]);
        reset_signals();
        /* Die with stoptime, so an interrupted run leaves nothing behind. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != me)
            _exit(127);
        execlp("sleep", "sleep", "1000", (char *)NULL);
        _exit(127);
    }
    close(gate[1]);
    char c;
    ssize_t got;
    do {
        got = read(gate[0], &c, 1);
    } while (got < 0 && errno == EINTR);
    if (got != 0)
        die("exec of the target");
    close(gate[0]);

    /* 2. The PID file, after the target started; let it settle. */
    write_pidfile(pidfile, target);
    struct timespec settle = {0, 10 * 1000 * 1000};
    nanosleep(&settle, NULL);

    /* 3. The reaper. */
    pthread_t thr;
    int e = pthread_create(&thr, NULL, reaper, NULL);
    if (e != 0) {
        errno = e;
        die("pthread_create");
    }

    /* 4. The stop command. */
    long long t_start = now_ns();
    pid_t stopper = fork();
    if (stopper < 0)
        die("fork(stop command)");
    if (stopper == 0) {
        reset_signals();
        if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
            _exit(127);
        execvp(stopcmd[0], stopcmd);
        fprintf(stderr, "stoptime: exec %s: %s\n", stopcmd[0], strerror(errno));
        _exit(127);
    }
    int st;
    pid_t r;
    do {
        r = waitpid(stopper, &st, 0);
    } while (r < 0 && errno == EINTR);
    long long t_end = now_ns();
    if (r != stopper)
        die("waitpid(stop command)");
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);

    /* 5. The target must be gone; if not, kill it. */
    struct timespec limit;
    if (clock_gettime(CLOCK_REALTIME, &limit) != 0)
        die("clock_gettime");
    limit.tv_sec += 2;
    int exited = 1;
    e = pthread_timedjoin_np(thr, NULL, &limit);
    if (e == ETIMEDOUT) {
        exited = 0;
        kill(target, SIGKILL);
        e = pthread_join(thr, NULL);
    }
    if (e != 0) {
        errno = e;
        die("pthread_join");
    }
    target = 0;
    long long t_exit = __atomic_load_n(&t_exit_ns, __ATOMIC_SEQ_CST);
    if (t_exit < 0)
        return 1;

    if (exited)
        printf("exit_to_return_us=%.1f total_us=%.1f start_to_exit_us=%.1f status=%d target_exited=1\n",
               (t_end - t_exit) / 1e3, (t_end - t_start) / 1e3, (t_exit - t_start) / 1e3, status);
    else
        printf("exit_to_return_us=na total_us=%.1f start_to_exit_us=na status=%d target_exited=0\n",
               (t_end - t_start) / 1e3, status);
    if (fflush(stdout) != 0)
        die("stdout");
    return 0;
}
