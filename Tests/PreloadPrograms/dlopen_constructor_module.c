/* dlopen_constructor_module.c — a library whose constructor runs for a
 * while (200 ms of CPU, no call that waits) before it marks the library
 * ready, for dlopen_constructor.c. */
#include <time.h>

static volatile int ready;

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

__attribute__((constructor)) static void set_up(void) {
    long end = now_ms() + 200;
    while (now_ms() < end) { /* busy: long enough to be preempted, were it allowed */ }
    ready = 1;
}

int module_ready(void) { return ready; }
