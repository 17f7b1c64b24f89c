/* hub_churn.c — rounds of 16 short threads, made and joined by main, as
 * fast as they go. Under `green run --hubs=2` the hubs hand ready threads to
 * each other all the time (main's hub is hungry while main waits in
 * pthread_join) and wake each other's joiners: hundreds of thousands of
 * cross-hub messages. One that a hub never reads leaves a thread ready in
 * its inbox and main waiting for it for ever; the watchdog's SIGALRM (its
 * default action) then ends the process. Such a message was lost about once
 * in two million hand-offs: libev clears its async flag with a plain store
 * and the hub read its inbox before that store was visible.
 *
 *   hub_churn [ROUNDS]      (default 50000) */
#include "check.h"

static void *dirty(void *arg) {
    char buf[4096];
    memset(buf, 0x5a, sizeof buf); /* some work, and a used stack */
    __asm__ volatile("" : : "r"(buf) : "memory");
    return arg;
}

int main(int argc, char **argv) {
    program_start(110);
    long rounds = argc > 1 ? atol(argv[1]) : 50000, joined = 0;
    for (long round = 0; round < rounds; round++) {
        pthread_t t[16];
        int made = 0;
        while (made < 16 && pthread_create(&t[made], NULL, dirty, (void *)(long)made) == 0) made++;
        CHECK(made == 16);
        for (int i = 0; i < made; i++) {
            void *r = NULL;
            if (pthread_join(t[i], &r) == 0 && (long)r == i) joined++;
        }
    }
    printf("threads joined: %ld of %ld\n", joined, rounds * 16);
    CHECK(joined == rounds * 16);
    return program_end("hub_churn");
}
