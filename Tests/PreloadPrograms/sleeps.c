/* sleeps.c — 100 threads each usleep(200 ms) at the same time: together
 * they take about 200 ms, not 100 x 200 ms. Prints how many OS threads the
 * process had while they slept ("os threads while sleeping: N"), which is
 * 101 natively and 1 when the threads are fibers. */
#include "check.h"

enum { THREADS = 100, SLEEP_US = 200000 };
static int woke;

static void *sleeper(void *arg) {
    (void)arg;
    CHECK(usleep(SLEEP_US) == 0);
    __atomic_add_fetch(&woke, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void) {
    program_start(60);
    struct timespec start = ts_now(CLOCK_MONOTONIC);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_create(&t[i], NULL, sleeper, NULL), 0);
    /* Sample while they sleep (they were all created well within 200 ms,
     * except on a machine so loaded that nothing here would be meaningful). */
    struct timespec nap = { 0, 50 * 1000000L };
    nanosleep(&nap, NULL);
    int during = os_thread_count();
    int awake_early = __atomic_load_n(&woke, __ATOMIC_SEQ_CST);
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    double ms = ms_since(start);
    CHECK(woke == THREADS);
    CHECK(ms >= SLEEP_US / 1000.0);
    CHECK(ms < 5000);   /* sequential sleeps would take 20 s */
    printf("os threads while sleeping: %d\n", during);
    printf("woke before the sample: %d\n", awake_early);
    printf("%d threads slept %d ms each: %s\n", THREADS, SLEEP_US / 1000, ms < 5000 ? "concurrently" : "SEQUENTIALLY");
    printf("elapsed ms: %.0f\n", ms);
    return program_end("sleeps");
}
