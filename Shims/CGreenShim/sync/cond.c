// cond.c — condition variables that park fibers: a sequence word that every
// signal bumps, and a count of waiters so that a signal with none costs one
// load. Not glibc's layout: every condition call of the process comes here.
// A zeroed condition (PTHREAD_COND_INITIALIZER) is ready to use.
//
// The waits are cancellation points, as glibc's: cancelled while it waits,
// a waiter leaves, passes on a signal it may have taken (glibc's "futex
// wake-up conservatively added"), and holds the mutex again before the
// thread's own cleanup handlers run, as POSIX requires.
#include "sync.h"
#include <errno.h>
#include <limits.h>
#include <string.h>

typedef struct gcond {
    uint32_t seq;     ///< futex word: bumped by each signal/broadcast with waiters
    uint32_t waiters; ///< threads and fibers between wait's start and end
    int32_t clock;    ///< pthread_condattr_setclock's clock (0 = CLOCK_REALTIME)
    int32_t flags;    ///< GF_SHARED for a process-shared condition
} gcond;

_Static_assert(sizeof(gcond) <= sizeof(pthread_cond_t), "gcond fits in pthread_cond_t");

GREEN_EXPORT int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *attr) {
    gcond *g = (gcond *)c;
    clockid_t clock = CLOCK_REALTIME;
    int pshared = PTHREAD_PROCESS_PRIVATE;
    if (attr) {
        pthread_condattr_getclock(attr, &clock);
        pthread_condattr_getpshared(attr, &pshared);
    }
    memset((char *)c + sizeof *g, 0, sizeof *c - sizeof *g);
    // Atomic stores: another thread may use the condition without having
    // seen this store synchronize (it reached that thread through a library
    // that is not instrumented), and ThreadSanitizer would call it a race.
    __atomic_store_n(&g->seq, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g->waiters, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&g->clock, (int32_t)clock, __ATOMIC_RELAXED);
    __atomic_store_n(&g->flags, pshared == PTHREAD_PROCESS_SHARED ? GF_SHARED : 0, __ATOMIC_RELEASE);
    return 0;
}

GREEN_EXPORT int pthread_cond_destroy(pthread_cond_t *c) {
    (void)c;
    return 0;
}

static int wake(pthread_cond_t *c, int n);

typedef struct cond_waiting {
    pthread_cond_t *c;
    pthread_mutex_t *m;
    uint32_t seq;
} cond_waiting;

/// The waiter was cancelled (its pthread_cleanup_push handler).
static void cancelled(void *arg) {
    cond_waiting *w = arg;
    gcond *g = (gcond *)w->c;
    __atomic_sub_fetch(&g->waiters, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&g->seq, __ATOMIC_SEQ_CST) != w->seq) wake(w->c, 1); // a signal came: maybe ours
    pthread_mutex_lock(w->m);
}

static int cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
    gcond *g = (gcond *)c;
    if (abstime && !timespec_ok(abstime)) return EINVAL;
    __atomic_add_fetch(&g->waiters, 1, __ATOMIC_SEQ_CST);
    uint32_t seq = __atomic_load_n(&g->seq, __ATOMIC_SEQ_CST);
    int r = pthread_mutex_unlock(m);
    if (r) { // not the owner (errorcheck): nothing waited
        __atomic_sub_fetch(&g->waiters, 1, __ATOMIC_SEQ_CST);
        return r;
    }
    cond_waiting w = {c, m, seq};
    pthread_cleanup_push(cancelled, &w);
    r = gfutex_wait(&g->seq, seq, clock, abstime, __atomic_load_n(&g->flags, __ATOMIC_RELAXED) | GF_CANCEL, "pthread_cond");
    pthread_cleanup_pop(0);
    __atomic_sub_fetch(&g->waiters, 1, __ATOMIC_SEQ_CST);
    // The mutex is held again whatever happened; as glibc's, a robust one's
    // EOWNERDEAD or ENOTRECOVERABLE is the answer.
    int relock = pthread_mutex_lock(m);
    if (relock) return relock;
    return r == ETIMEDOUT ? ETIMEDOUT : 0;
}

GREEN_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) { return cond_wait_until(c, m, CLOCK_REALTIME, NULL); }

GREEN_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime) {
    return cond_wait_until(c, m, __atomic_load_n(&((gcond *)c)->clock, __ATOMIC_RELAXED), abstime);
}

GREEN_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    return cond_wait_until(c, m, clock, abstime);
}

static int wake(pthread_cond_t *c, int n) {
    gcond *g = (gcond *)c;
    if (__atomic_load_n(&g->waiters, __ATOMIC_SEQ_CST) == 0) return 0;
    __atomic_add_fetch(&g->seq, 1, __ATOMIC_SEQ_CST);
    gfutex_wake(&g->seq, n, __atomic_load_n(&g->flags, __ATOMIC_RELAXED));
    return 0;
}

GREEN_EXPORT int pthread_cond_signal(pthread_cond_t *c) { return wake(c, 1); }
GREEN_EXPORT int pthread_cond_broadcast(pthread_cond_t *c) { return wake(c, INT_MAX); }
