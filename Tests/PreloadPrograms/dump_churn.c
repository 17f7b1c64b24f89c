/* dump_churn.c — threads that come and go while fiber dumps are taken, for
 * the test that the monitor thread's dump never crashes the program. For
 * about `seconds` (default 2) main starts batches of 16 short-lived threads,
 * each with a stack size of its own (16 distinct sizes: more than the hub
 * pools, so under the preload most stacks are mapped alone and unmapped the
 * moment their thread ends — fiber records vanishing under the reader), each
 * of which sleeps 0–2 ms and ends. It says "churning" first and checks every
 * thread's result. */
#include "check.h"

static void *short_lived(void *arg) {
    uintptr_t i = (uintptr_t)arg;
    sleep_ms((long)(i % 3));
    return (void *)(i * 2 + 1);
}

int main(int argc, char **argv) {
    program_start(60);
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    printf("churning\n");
    struct timespec start = ts_now(CLOCK_MONOTONIC);
    unsigned long threads = 0;
    while (ms_since(start) < seconds * 1000) {
        pthread_t t[16];
        for (uintptr_t i = 0; i < 16; i++) {
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            CHECK_RC(pthread_attr_setstacksize(&attr, 65536 + i * 16384), 0);
            CHECK_RC(pthread_create(&t[i], &attr, short_lived, (void *)(threads + i)), 0);
            pthread_attr_destroy(&attr);
        }
        for (uintptr_t i = 0; i < 16; i++) {
            void *result = NULL;
            CHECK_RC(pthread_join(t[i], &result), 0);
            CHECK((uintptr_t)result == (threads + i) * 2 + 1);
        }
        threads += 16;
    }
    printf("%lu threads came and went\n", threads);
    return program_end("dump_churn");
}
