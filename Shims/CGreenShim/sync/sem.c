// sem.c — POSIX semaphores that park fibers, in glibc's own layout (value in
// the low 32 bits, waiters in the high 32, then the "private" flag), so a
// semaphore from sem_open shared with a native process keeps working.
// sem_post is async-signal-safe, as POSIX requires. The waits are
// cancellation points, as glibc's (sem_wait also when it need not wait).
#include "sync.h"
#include <errno.h>
#include <limits.h>

typedef struct gsem {
    uint32_t value;    ///< futex word (little-endian low half of glibc's 64-bit data)
    uint32_t nwaiters;
    int private_;      ///< glibc's futex flag: 0 (FUTEX_PRIVATE) or 128 (FUTEX_SHARED, sem_open and pshared)
} gsem;

/// glibc's values of the "private" word (nptl's FUTEX_PRIVATE and FUTEX_SHARED):
/// the inverse of what the name suggests, since it is XORed into the futex op.
enum { GLIBC_FUTEX_PRIVATE = 0, GLIBC_FUTEX_SHARED = 128 };

_Static_assert(sizeof(gsem) <= sizeof(sem_t), "gsem fits in sem_t");
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sem.c assumes glibc's little-endian layout"
#endif

static inline int flags_of(gsem *s) {
    return __atomic_load_n(&s->private_, __ATOMIC_RELAXED) == GLIBC_FUTEX_PRIVATE ? 0 : GF_SHARED;
}

GREEN_EXPORT int sem_init(sem_t *sem, int pshared, unsigned int value) {
    if (value > SEM_VALUE_MAX) {
        errno = EINVAL;
        return -1;
    }
    gsem *s = (gsem *)sem;
    // Atomic stores: the semaphore may reach another thread through a library
    // that is not instrumented (libdispatch), which ThreadSanitizer cannot see.
    __atomic_store_n(&s->value, value, __ATOMIC_RELAXED);
    __atomic_store_n(&s->nwaiters, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->private_, pshared ? GLIBC_FUTEX_SHARED : GLIBC_FUTEX_PRIVATE, __ATOMIC_RELEASE);
    return 0;
}

GREEN_EXPORT int sem_destroy(sem_t *sem) {
    (void)sem;
    return 0;
}

GREEN_EXPORT int sem_getvalue(sem_t *sem, int *value) {
    *value = (int)__atomic_load_n(&((gsem *)sem)->value, __ATOMIC_RELAXED);
    return 0;
}

GREEN_EXPORT int sem_post(sem_t *sem) {
    gsem *s = (gsem *)sem;
    uint32_t v = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
    do {
        if (v == SEM_VALUE_MAX) {
            errno = EOVERFLOW;
            return -1;
        }
    } while (!__atomic_compare_exchange_n(&s->value, &v, v + 1, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (__atomic_load_n(&s->nwaiters, __ATOMIC_SEQ_CST)) gfutex_wake(&s->value, 1, flags_of(s) | GF_SIGNAL_SAFE);
    return 0;
}

static int try_take(gsem *s) {
    uint32_t v = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
    while (v > 0)
        if (__atomic_compare_exchange_n(&s->value, &v, v - 1, 1, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 1;
    return 0;
}

GREEN_EXPORT int sem_trywait(sem_t *sem) {
    green_fair_check(); // a thread polling a semaphore in a loop still lets the others run
    if (try_take((gsem *)sem)) return 0;
    errno = EAGAIN;
    return -1;
}

/// The waiter was cancelled (its pthread_cleanup_push handler): it leaves,
/// and a post whose wake-up it may have taken wakes another waiter.
static void cancelled(void *arg) {
    gsem *s = arg;
    __atomic_sub_fetch(&s->nwaiters, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->value, __ATOMIC_SEQ_CST) && __atomic_load_n(&s->nwaiters, __ATOMIC_SEQ_CST))
        gfutex_wake(&s->value, 1, flags_of(s));
}

static int sem_wait_until(sem_t *sem, clockid_t clock, const struct timespec *abstime) {
    green_fair_check();
    gsem *s = (gsem *)sem;
    if (try_take(s)) return 0;
    if (abstime && !timespec_ok(abstime)) {
        errno = EINVAL;
        return -1;
    }
    __atomic_add_fetch(&s->nwaiters, 1, __ATOMIC_SEQ_CST);
    int r = 0;
    pthread_cleanup_push(cancelled, s);
    while (!try_take(s)) {
        int w = gfutex_wait(&s->value, 0, clock, abstime, flags_of(s) | GF_CANCEL | GF_EINTR,
                            abstime ? "sem_timedwait" : "sem_wait");
        if (w == EINTR) { // a handler without SA_RESTART ran: as glibc's, the wait fails
            r = EINTR;
            break;
        }
        if (w == ETIMEDOUT) {
            // One last look: a post that came with the timeout is ours. Taken
            // here, it must not be looked for again by the loop's condition
            // (that lost it: the waiter timed out holding a token nobody had).
            if (!try_take(s)) r = ETIMEDOUT;
            break;
        }
    }
    pthread_cleanup_pop(0);
    __atomic_sub_fetch(&s->nwaiters, 1, __ATOMIC_SEQ_CST);
    if (r) {
        errno = r;
        return -1;
    }
    return 0;
}

GREEN_EXPORT int sem_wait(sem_t *sem) {
    shim_testcancel(); // glibc: a cancellation point "shall occur" in sem_wait, even when it takes at once
    return sem_wait_until(sem, CLOCK_REALTIME, NULL);
}
GREEN_EXPORT int sem_timedwait(sem_t *sem, const struct timespec *abstime) { return sem_wait_until(sem, CLOCK_REALTIME, abstime); }

GREEN_EXPORT int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abstime) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) {
        errno = EINVAL;
        return -1;
    }
    return sem_wait_until(sem, clock, abstime);
}
