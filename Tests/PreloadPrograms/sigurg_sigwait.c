/* sigurg_sigwait.c — a program that blocks SIGURG in every thread and takes
 * it with sigwait gets it, as any other signal: it stays pending while every
 * thread blocks it, for a sigwait, sigpending or an unblock to see. (Under
 * green run SIGURG was once also the library's preemption signal, which the
 * OS threads never blocked, and the program's was dropped.) */
#include "check.h"

static int taken = -1;

static void *waiter(void *arg) {
    (void)arg;
    sigset_t urg;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    int sig = 0;
    CHECK_RC(sigwait(&urg, &sig), 0);
    __atomic_store_n(&taken, sig, __ATOMIC_RELEASE);
    return NULL;
}

int main(void) {
    program_start(30);
    sigset_t urg;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &urg, NULL), 0); /* every thread made from now on blocks it too */

    /* 1. A thread waits in sigwait; the process is sent SIGURG. */
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, waiter, NULL), 0);
    sleep_ms(50); /* in sigwait by now */
    CHECK(kill(getpid(), SIGURG) == 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK(taken == SIGURG);
    printf("sigwait in a thread: took SIGURG: %s\n", taken == SIGURG ? "yes" : "no");

    /* 2. Nobody waits: it stays pending for the process, then main takes it. */
    CHECK(kill(getpid(), SIGURG) == 0);
    sleep_ms(20);
    sigset_t pending;
    sigemptyset(&pending);
    CHECK(sigpending(&pending) == 0);
    int was_pending = sigismember(&pending, SIGURG) == 1;
    CHECK(was_pending);
    int sig = 0;
    CHECK_RC(sigwait(&urg, &sig), 0);
    CHECK(sig == SIGURG);
    sigemptyset(&pending);
    CHECK(sigpending(&pending) == 0);
    CHECK(!sigismember(&pending, SIGURG));
    printf("nobody waiting: pending %s, then taken by sigwait: %s\n", was_pending ? "yes" : "no",
           sig == SIGURG ? "yes" : "no");
    return program_end("sigurg_sigwait");
}
