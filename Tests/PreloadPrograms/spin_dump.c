/* spin_dump.c — a thread that spins without making any call, for the
 * diagnosis tests. "spinner" loops on an atomic flag that "setter" sets after
 * sleeping 200 ms; main joins them. Natively that takes 200 ms. As fibers of
 * one hub it never ends: once the spinner runs, nothing else does (the hub
 * never polls again, so the setter's sleep never ends) — the case only the
 * monitor thread can report. It says "spinning" (on stdout) when it starts.
 *
 *   spin_dump          the signal mask as given
 *   spin_dump block    main blocks every signal but SIGALRM (the watchdog)
 *                      first, as servers that sigwait do: under the preload
 *                      that is the mask of the one OS thread running every
 *                      fiber thread, so no handler ever runs there. */
#include "check.h"
#include <signal.h>

static int flag;

static void *spinner(void *arg) {
    printf("spinning\n");
    while (!__atomic_load_n(&flag, __ATOMIC_ACQUIRE)) {
    }
    return arg;
}

static void *setter(void *arg) {
    sleep_ms(200);
    __atomic_store_n(&flag, 1, __ATOMIC_RELEASE);
    return arg;
}

int main(int argc, char **argv) {
    program_start(60);
    if (argc > 1 && strcmp(argv[1], "block") == 0) {
        sigset_t all;
        sigfillset(&all);
        sigdelset(&all, SIGALRM);
        CHECK_RC(pthread_sigmask(SIG_BLOCK, &all, NULL), 0);
    }
    pthread_t set, spin;
    CHECK_RC(pthread_create(&set, NULL, setter, NULL), 0);
    CHECK_RC(pthread_create(&spin, NULL, spinner, NULL), 0);
    CHECK_RC(pthread_setname_np(set, "setter"), 0);
    CHECK_RC(pthread_setname_np(spin, "spinner"), 0);
    CHECK_RC(pthread_join(spin, NULL), 0);
    CHECK_RC(pthread_join(set, NULL), 0);
    return program_end("spin_dump");
}
