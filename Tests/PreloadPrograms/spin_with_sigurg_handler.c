/* spin_with_sigurg_handler.c — a program with a SIGURG handler of its own
 * (haproxy has one, for its thread dumps) whose threads spin on a lock that
 * another thread holds while it sleeps: the spinner ends once the holder
 * wakes and lets go, as natively, and every SIGURG the program sends itself
 * reaches its handler exactly once, none taken away and none added.
 *
 * Under green run preemption used the program's SIGURG and was off while
 * the program had a handler for it: haproxy's thread spun for ever on a lock
 * its other thread (a fiber of the same hub) held, and the compat suite's
 * haproxy check hung. */
#include "check.h"

static int lock;               /* a spinlock, as haproxy's HA_SPIN_LOCK */
static int held;               /* the holder has it */
static volatile int urgs;      /* SIGURGs the handler took */

static void on_urg(int sig) {
    (void)sig;
    urgs++;
}

static void *holder(void *arg) {
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) { }
    __atomic_store_n(&held, 1, __ATOMIC_RELEASE);
    sleep_ms(50); /* parks: the spinner runs meanwhile, and spins */
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
    return arg;
}

static void *spinner(void *arg) {
    long long spins = 0;
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) spins++;
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
    return (void *)(intptr_t)(spins > 0);
}

/* Waits, without a call that could take a signal early, until the handler ran `n` times. */
static int urgs_reach(int n) {
    for (int i = 0; i < 2000 && urgs < n; i++) sleep_ms(1);
    return urgs;
}

int main(void) {
    program_start(60);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_urg;
    CHECK(sigaction(SIGURG, &sa, NULL) == 0);

    int rounds = 20, spun = 0;
    for (int r = 0; r < rounds; r++) {
        __atomic_store_n(&held, 0, __ATOMIC_RELEASE);
        pthread_t h, s;
        CHECK_RC(pthread_create(&h, NULL, holder, NULL), 0);
        while (!__atomic_load_n(&held, __ATOMIC_ACQUIRE)) sleep_ms(1);
        CHECK_RC(pthread_create(&s, NULL, spinner, NULL), 0);
        void *did_spin = NULL;
        CHECK_RC(pthread_join(s, &did_spin), 0);
        CHECK_RC(pthread_join(h, NULL), 0);
        spun += did_spin != NULL;
    }
    printf("spinner on a lock held across a sleep: ended %d of %d rounds, spun in %s\n", rounds, rounds,
           spun == rounds ? "every one" : "some only");
    CHECK(spun == rounds);

    /* The program's own SIGURGs, one at a time, to a thread and to the process. */
    int sent = 0;
    for (int i = 0; i < 50; i++) {
        if (i % 2) CHECK_RC(pthread_kill(pthread_self(), SIGURG), 0);
        else CHECK(kill(getpid(), SIGURG) == 0);
        sent++;
        CHECK(urgs_reach(sent) == sent);
    }
    printf("SIGURGs sent %d, taken by the handler %d\n", sent, urgs_reach(sent));
    return program_end("spin_with_sigurg_handler");
}
