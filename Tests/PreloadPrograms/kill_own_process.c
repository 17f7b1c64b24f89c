/* kill_own_process.c — BIND's libisc ends host, dig and named this way:
 * main blocks SIGHUP, SIGINT and SIGTERM before making threads (which
 * inherit the mask), sets SIG_DFL for them and waits in sigwait; a worker
 * calls kill(getpid(), SIGTERM). Every thread blocks SIGTERM when it is
 * sent, so it stays pending and main's sigwait takes it. Here a worker
 * first unblocks SIGINT and SIGTERM for a moment and blocks them again,
 * many times, as BIND's threads do around their work, and the last to
 * block them again sends it at once. Each change is loaded into every
 * hub's OS thread, at that hub's next turn: one that had not loaded the
 * last yet, or noted a newer change than the one it loaded, still had
 * SIGTERM unblocked, and its default action ended the process (host under
 * green run, about 1 run in 100 under load). */
#include "check.h"
#include <signal.h>

enum { ROUNDS = 100, WORKERS = 3 };

static sigset_t ended_by; /* SIGHUP, SIGINT, SIGTERM */
static int blocked_again;  /* workers of this round done unblocking */

static void *worker(void *arg) {
    (void)arg;
    sigset_t only_hup;
    sigemptyset(&only_hup);
    sigaddset(&only_hup, SIGHUP);
    /* Unblock and block again, many times, on whichever hub it runs on,
     * while the others do the same on theirs. */
    for (int i = 0; i < 200; i++) {
        CHECK_RC(pthread_sigmask(SIG_SETMASK, &only_hup, NULL), 0);
        CHECK_RC(pthread_sigmask(SIG_SETMASK, &ended_by, NULL), 0);
    }
    /* The last to block them again sends it at once, as BIND's worker does
     * (natively no thread would take it then: every one blocks it). */
    if (__atomic_add_fetch(&blocked_again, 1, __ATOMIC_SEQ_CST) == WORKERS) CHECK(kill(getpid(), SIGTERM) == 0);
    return NULL;
}

int main(void) {
    program_start(120);
    sigemptyset(&ended_by);
    sigaddset(&ended_by, SIGHUP);
    sigaddset(&ended_by, SIGINT);
    sigaddset(&ended_by, SIGTERM);
    CHECK(signal(SIGTERM, SIG_DFL) != SIG_ERR);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &ended_by, NULL), 0);
    int taken = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t t[WORKERS];
        for (long i = 0; i < WORKERS; i++) CHECK_RC(pthread_create(&t[i], NULL, worker, (void *)i), 0);
        int sig = 0;
        CHECK_RC(sigwait(&ended_by, &sig), 0);
        taken += sig == SIGTERM;
        for (int i = 0; i < WORKERS; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
        blocked_again = 0;
    }
    printf("rounds that sigwait took SIGTERM in: %d of %d\n", taken, ROUNDS);
    return program_end("kill_own_process");
}
