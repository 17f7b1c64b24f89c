// barrier.c — pthread barriers that park fibers (libc's would block the hub
// thread, and with it every other party of the barrier: a deadlock).
#include "sync.h"
#include <errno.h>
#include <limits.h>

typedef struct gbarrier {
    uint32_t generation; ///< futex word: bumped when the last party arrives
    uint32_t arrived;
    uint32_t count;
    int32_t flags;       ///< GF_SHARED for a process-shared barrier
} gbarrier;

_Static_assert(sizeof(gbarrier) <= sizeof(pthread_barrier_t), "gbarrier fits in pthread_barrier_t");

GREEN_EXPORT int pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *attr, unsigned count) {
    if (count == 0 || count > INT_MAX) return EINVAL;
    gbarrier *g = (gbarrier *)b;
    int pshared = PTHREAD_PROCESS_PRIVATE;
    if (attr) pthread_barrierattr_getpshared(attr, &pshared);
    g->generation = 0;
    g->arrived = 0;
    g->count = count;
    g->flags = pshared == PTHREAD_PROCESS_SHARED ? GF_SHARED : 0;
    return 0;
}

GREEN_EXPORT int pthread_barrier_destroy(pthread_barrier_t *b) {
    gbarrier *g = (gbarrier *)b;
    return __atomic_load_n(&g->arrived, __ATOMIC_ACQUIRE) ? EBUSY : 0;
}

GREEN_EXPORT int pthread_barrier_wait(pthread_barrier_t *b) {
    gbarrier *g = (gbarrier *)b;
    uint32_t gen = __atomic_load_n(&g->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&g->arrived, 1, __ATOMIC_ACQ_REL) == g->count) {
        __atomic_store_n(&g->arrived, 0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&g->generation, 1, __ATOMIC_RELEASE);
        gfutex_wake(&g->generation, INT_MAX, g->flags);
        return PTHREAD_BARRIER_SERIAL_THREAD;
    }
    while (__atomic_load_n(&g->generation, __ATOMIC_ACQUIRE) == gen)
        gfutex_wait(&g->generation, gen, CLOCK_MONOTONIC, NULL, g->flags, "pthread_barrier");
    return 0;
}
