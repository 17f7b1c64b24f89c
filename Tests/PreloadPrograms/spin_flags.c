/* spin_flags.c — threads that spin-wait, without any call, on flags other
 * threads set (as redis' I/O threads and many lock-free programs do), and a
 * CPU-bound thread next to one that sleeps and ticks: every thread finishes
 * and the ticker keeps ticking, as with the kernel's preemption. A thread
 * that computes holding stdout's lock (flockfile) while another prints
 * finishes too (preempting it there would leave the printer waiting for the
 * lock in the kernel, on the only OS thread). */
#include "check.h"

#define CHAIN 4
static int flags[CHAIN + 1];
static long long spins[CHAIN];

/* Thread i waits until flag i is set, then sets flag i + 1. */
static void *relay(void *arg) {
    int i = (int)(intptr_t)arg;
    long long n = 0;
    while (!__atomic_load_n(&flags[i], __ATOMIC_ACQUIRE)) n++;
    spins[i] = n;
    __atomic_store_n(&flags[i + 1], 1, __ATOMIC_RELEASE);
    return NULL;
}

static volatile int stop;
static int ticks;
static void *ticker(void *arg) {
    while (!stop) {
        sleep_ms(2);
        __atomic_add_fetch(&ticks, 1, __ATOMIC_SEQ_CST);
    }
    return arg;
}

static void *printer(void *arg) {
    for (int i = 0; i < 3; i++) printf("printer line %d\n", i);
    return arg;
}

int main(void) {
    program_start(60);
    /* Started last-first: each waits on one that is not running yet. */
    pthread_t t[CHAIN];
    for (int i = CHAIN - 1; i >= 0; i--) CHECK_RC(pthread_create(&t[i], NULL, relay, (void *)(intptr_t)i), 0);
    __atomic_store_n(&flags[0], 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&flags[CHAIN], __ATOMIC_ACQUIRE)) { /* main spins too */ }
    for (int i = 0; i < CHAIN; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    printf("spin relay of %d threads: finished\n", CHAIN);

    /* A CPU-bound thread does not stop a thread that sleeps and ticks. */
    pthread_t tick;
    CHECK_RC(pthread_create(&tick, NULL, ticker, NULL), 0);
    struct timespec start = ts_now(CLOCK_MONOTONIC);
    volatile unsigned long long sum = 0;
    /* 0.5 s of CPU with no call that parks... (looking at the clock only now
     * and then: a loop that lives in the vDSO's clock_gettime is preempted
     * only when the signal lands in its own code) */
    while (ms_since(start) < 500)
        for (int i = 0; i < 100000; i++) sum += 1;
    stop = 1;
    CHECK_RC(pthread_join(tick, NULL), 0);
    CHECK(ticks >= 5); /* ...and the ticker still ran: ~250 ticks natively */
    printf("busy thread: the sleeping thread kept ticking: %s\n", ticks >= 5 ? "yes" : "no");

    flockfile(stdout);
    pthread_t print;
    CHECK_RC(pthread_create(&print, NULL, printer, NULL), 0);
    start = ts_now(CLOCK_MONOTONIC);
    while (ms_since(start) < 100) /* computes holding stdout's lock */
        for (int i = 0; i < 100000; i++) sum += 1;
    fputs_unlocked("busy thread holding stdout's lock: done\n", stdout);
    funlockfile(stdout);
    CHECK_RC(pthread_join(print, NULL), 0);
    return program_end("spin_flags");
}
