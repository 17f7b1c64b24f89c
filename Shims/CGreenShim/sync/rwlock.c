// rwlock.c — reader-writer locks that park fibers. One state word (readers,
// or a writer bit) and a sequence word that each release bumps and wakes all
// on; waiters recheck. Readers go first unless writers wait and the lock
// prefers writers (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP), as glibc.
// Uses glibc's field names; a zeroed lock (PTHREAD_RWLOCK_INITIALIZER) works.
#include "sync.h"
#include <errno.h>
#include <limits.h>
#include <string.h>

#define WRITER 0x80000000u

#define STATE(l) ((uint32_t *)&(l)->__data.__readers)
#define WRITERS_WAITING(l) ((uint32_t *)&(l)->__data.__writers)
#define SEQ(l) ((uint32_t *)&(l)->__data.__wrphase_futex)
#define WAITERS(l) ((uint32_t *)&(l)->__data.__writers_futex)
/// The writer's id: read by other threads while the writer sets it (relaxed atomics).
#define OWNER(l) __atomic_load_n(&(l)->__data.__cur_writer, __ATOMIC_RELAXED)
#define SET_OWNER(l, id) __atomic_store_n(&(l)->__data.__cur_writer, (id), __ATOMIC_RELAXED)
#define PREFER_WRITER(l) ((l)->__data.__flags != 0)
#define SHARED(l) ((l)->__data.__shared ? GF_SHARED : 0)

GREEN_EXPORT int pthread_rwlock_init(pthread_rwlock_t *l, const pthread_rwlockattr_t *attr) {
    memset(l, 0, sizeof *l);
    if (attr) {
        int kind = PTHREAD_RWLOCK_PREFER_READER_NP, pshared = PTHREAD_PROCESS_PRIVATE;
        pthread_rwlockattr_getkind_np(attr, &kind);
        pthread_rwlockattr_getpshared(attr, &pshared);
        l->__data.__flags = kind == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
        l->__data.__shared = pshared == PTHREAD_PROCESS_SHARED;
    }
    return 0;
}

GREEN_EXPORT int pthread_rwlock_destroy(pthread_rwlock_t *l) {
    return __atomic_load_n(STATE(l), __ATOMIC_RELAXED) ? EBUSY : 0;
}

static int try_read(pthread_rwlock_t *l) {
    uint32_t s = __atomic_load_n(STATE(l), __ATOMIC_RELAXED);
    for (;;) {
        if (s & WRITER) return EBUSY;
        if (PREFER_WRITER(l) && __atomic_load_n(WRITERS_WAITING(l), __ATOMIC_RELAXED)) return EBUSY;
        if (s + 1 == WRITER) return EAGAIN; // too many readers
        if (__atomic_compare_exchange_n(STATE(l), &s, s + 1, 1, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 0;
    }
}

static int try_write(pthread_rwlock_t *l) {
    uint32_t none = 0;
    if (!__atomic_compare_exchange_n(STATE(l), &none, WRITER, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return EBUSY;
    SET_OWNER(l, shim_owner_id());
    return 0;
}

/// Retry `attempt` until it stops saying EBUSY, parking between tries.
static int wait_for(pthread_rwlock_t *l, int (*attempt)(pthread_rwlock_t *), int writer, clockid_t clock,
                    const struct timespec *abstime) {
    int r = attempt(l);
    if (r != EBUSY) return r;
    if (OWNER(l) == shim_owner_id() && (__atomic_load_n(STATE(l), __ATOMIC_RELAXED) & WRITER)) return EDEADLK;
    if (abstime && !timespec_ok(abstime)) return EINVAL;
    __atomic_add_fetch(WAITERS(l), 1, __ATOMIC_SEQ_CST);
    if (writer) __atomic_add_fetch(WRITERS_WAITING(l), 1, __ATOMIC_SEQ_CST);
    for (;;) {
        uint32_t seq = __atomic_load_n(SEQ(l), __ATOMIC_SEQ_CST);
        r = attempt(l);
        if (r != EBUSY) break;
        if (gfutex_wait(SEQ(l), seq, clock, abstime, SHARED(l), "pthread_rwlock") == ETIMEDOUT) {
            r = attempt(l); // one last look
            if (r == EBUSY) r = ETIMEDOUT;
            break;
        }
    }
    if (writer) __atomic_sub_fetch(WRITERS_WAITING(l), 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(WAITERS(l), 1, __ATOMIC_SEQ_CST);
    return r;
}

GREEN_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *l) { return wait_for(l, try_read, 0, CLOCK_REALTIME, NULL); }
GREEN_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *l) { return wait_for(l, try_write, 1, CLOCK_REALTIME, NULL); }
GREEN_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t *l) { return try_read(l); }
GREEN_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t *l) { return try_write(l); }

GREEN_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *l, const struct timespec *abstime) {
    return wait_for(l, try_read, 0, CLOCK_REALTIME, abstime);
}
GREEN_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *l, const struct timespec *abstime) {
    return wait_for(l, try_write, 1, CLOCK_REALTIME, abstime);
}
GREEN_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t clock, const struct timespec *abstime) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    return wait_for(l, try_read, 0, clock, abstime);
}
GREEN_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t clock, const struct timespec *abstime) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    return wait_for(l, try_write, 1, clock, abstime);
}

GREEN_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *l) {
    uint32_t s = __atomic_load_n(STATE(l), __ATOMIC_RELAXED);
    if (s == 0) return EPERM;
    if (s & WRITER) {
        if (OWNER(l) != shim_owner_id()) return EPERM;
        SET_OWNER(l, 0);
        __atomic_store_n(STATE(l), 0, __ATOMIC_RELEASE);
    } else if (__atomic_sub_fetch(STATE(l), 1, __ATOMIC_RELEASE) != 0) {
        return 0; // other readers still hold it: nobody can go in yet
    }
    if (__atomic_load_n(WAITERS(l), __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(SEQ(l), 1, __ATOMIC_SEQ_CST);
        gfutex_wake(SEQ(l), INT_MAX, SHARED(l));
    }
    return 0;
}
