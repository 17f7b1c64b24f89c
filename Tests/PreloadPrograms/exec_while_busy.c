/* exec_while_busy.c — a child that runs two busy threads and then execs
 * another program (with a large environment, so the exec takes a while)
 * becomes that program and exits 0, every time, as natively.
 *
 * Under green run a preemption signal (a real-time signal, glibc's
 * SIGSETXID) sent to the exec'ing thread's OS thread just before or during
 * the exec stayed pending across it, and the new program, whose action for
 * it is the default, was killed by it (42 children of 50 with one hub).
 *
 * The children exec in turn with execve, execveat and both through
 * syscall(): each holds preemption. A failed exec fails as glibc's does
 * and lets go of the hold.
 *
 * Then a vfork child execs (as CPython's subprocess does): threads that
 * spin-wait on each other still end, so the parent is still preempted. */
#include "check.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static long long now_ns(void) {
    struct timespec t = ts_now(CLOCK_MONOTONIC);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
static void spin_ns(long long ns) {
    long long end = now_ns() + ns;
    while (now_ns() < end) { }
}
static void *spinner(void *arg) {
    for (;;) spin_ns(1000000);
    return arg;
}

static int started, turn;
static void *waits_for_its_turn(void *arg) {
    __atomic_store_n(&started, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&turn, __ATOMIC_ACQUIRE)) { }
    return arg;
}

int main(void) {
    program_start(120);
    enum { ROUNDS = 40, PAD = 24 };
    static char *env[PAD + 1];
    for (int i = 0; i < PAD; i++) { /* 24 variables of 64 KiB */
        env[i] = malloc(65536);
        memset(env[i], 'x', 65535);
        memcpy(env[i], "PAD=", 4);
        env[i][65535] = 0;
    }
    char *args[] = {"/bin/true", NULL};
    int exited0 = 0;
    for (int r = 0; r < ROUNDS; r++) {
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
            pthread_t t;
            pthread_create(&t, NULL, spinner, NULL);
            spin_ns(3000000 + (r % 7) * 700000); /* past a preemption slice, at a different point each round */
            switch (r % 4) {
            case 0: execve(args[0], args, env); break;
            case 1: syscall(SYS_execve, args[0], args, env); break;
            case 2: execveat(AT_FDCWD, args[0], args, env, 0); break;
            default: syscall(SYS_execveat, AT_FDCWD, args[0], args, env, 0);
            }
            _exit(99);
        }
        int status = 0;
        CHECK(waitpid(p, &status, 0) == p);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) exited0++;
        else if (WIFSIGNALED(status)) printf("round %d: the new program was killed by signal %d\n", r, WTERMSIG(status));
        else printf("round %d: exit status %d\n", r, WEXITSTATUS(status));
    }
    printf("children that exec'ed while busy and exited 0: %d of %d\n", exited0, ROUNDS);
    CHECK(exited0 == ROUNDS);

    /* A failed exec fails as glibc's does and lets go of its hold: the
     * spin-wait below still ends. */
    errno = 0;
    int failed = execveat(-1, "no-such-program", args, env, 0);
    printf("execveat on a bad dirfd: %d, %s\n", failed, errno == EBADF ? "EBADF" : strerror(errno));
    CHECK(failed == -1 && errno == EBADF);
    errno = 0;
    failed = (int)syscall(SYS_execve, "/nonexistent/program", args, env);
    printf("execve of a missing program through syscall(): %d, %s\n", failed, errno == ENOENT ? "ENOENT" : strerror(errno));
    CHECK(failed == -1 && errno == ENOENT);

    char *true_args[] = {"/bin/true", NULL};
    pid_t v = vfork();
    if (v == 0) {
        execv(true_args[0], true_args);
        _exit(99);
    }
    int status = 0;
    CHECK(v > 0 && waitpid(v, &status, 0) == v && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pthread_t w;
    CHECK_RC(pthread_create(&w, NULL, waits_for_its_turn, NULL), 0);
    while (!__atomic_load_n(&started, __ATOMIC_ACQUIRE)) { } /* each of the two spins until the other ran */
    __atomic_store_n(&turn, 1, __ATOMIC_RELEASE);
    CHECK_RC(pthread_join(w, NULL), 0);
    printf("after a vfork child exec'ed: a thread spinning for its turn got it\n");
    return program_end("exec_while_busy");
}
