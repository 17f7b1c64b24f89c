/* exec_while_busy.c — a child that runs two busy threads and then execs
 * another program (with a large environment, so the exec takes a while)
 * becomes that program and exits 0, every time, as natively.
 *
 * Under green run a preemption signal (a real-time signal, glibc's
 * SIGSETXID) sent to the exec'ing thread's OS thread just before or during
 * the exec stayed pending across it, and the new program, whose action for
 * it is the default, was killed by it (42 children of 50 with one hub). */
#include "check.h"
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
            execve(args[0], args, env);
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
    return program_end("exec_while_busy");
}
