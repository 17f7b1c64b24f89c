// once.c — pthread_once that parks fibers while another runs the routine.
// Same states as glibc (0 new, 1 running, 2 done), so a once run before the
// library was loaded still counts.
#include "sync.h"
#include <limits.h>

enum { ONCE_NEW = 0, ONCE_RUNNING = 1, ONCE_DONE = 2 };

GREEN_EXPORT int pthread_once(pthread_once_t *once, void (*init)(void)) {
    uint32_t *word = (uint32_t *)once;
    for (;;) {
        uint32_t v = __atomic_load_n(word, __ATOMIC_ACQUIRE);
        if (v == ONCE_DONE) return 0;
        if (v == ONCE_NEW) {
            if (!__atomic_compare_exchange_n(word, &v, ONCE_RUNNING, 0, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) continue;
            init();
            __atomic_store_n(word, ONCE_DONE, __ATOMIC_RELEASE);
            gfutex_wake(word, INT_MAX, 0);
            return 0;
        }
        gfutex_wait(word, v, CLOCK_MONOTONIC, NULL, 0, "pthread_once"); // another runs it: wait
    }
}
