// mutex.c — pthread mutexes that park fibers. The lock word follows glibc's
// own protocol (0 free, 1 locked, 2 locked with waiters), so a mutex shared
// with a native thread, or with another process, stays one mutex. Owners are
// fiber-thread ids or kernel tids (never equal), since every fiber of a hub
// shares one tid. Robust and priority-inheritance mutexes under `green run`
// are owner_word_mutex.c's; priority-protection ones, and those in a linked
// program, are libc's (they block the thread).
#include "sync.h"
#include <errno.h>
#include <limits.h>
#include <string.h>

#define KIND_TYPE 3           // PTHREAD_MUTEX_KIND_MASK_NP
#define KIND_LIBC (16 | 32 | 64) // robust, priority inheritance, priority protection
#define KIND_PSHARED 128

static inline int kind_of(pthread_mutex_t *m) { return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED); }
static inline uint32_t *word_of(pthread_mutex_t *m) { return (uint32_t *)&m->__data.__lock; }
static inline int futex_flags(int kind) { return (kind & KIND_PSHARED) ? GF_SHARED : 0; }
/// The owner field is read by other threads (is it mine?) while the owner
/// writes it: relaxed atomics (plain moves), as glibc's reads are in effect.
static inline int owner_of(pthread_mutex_t *m) { return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED); }
static inline void set_owner(pthread_mutex_t *m, int id) { __atomic_store_n(&m->__data.__owner, id, __ATOMIC_RELAXED); }

GREEN_EXPORT int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr) {
    int type = PTHREAD_MUTEX_NORMAL, pshared = PTHREAD_PROCESS_PRIVATE;
    int robust = PTHREAD_MUTEX_STALLED, protocol = PTHREAD_PRIO_NONE;
    if (attr) {
        pthread_mutexattr_gettype(attr, &type);
        pthread_mutexattr_getpshared(attr, &pshared);
        pthread_mutexattr_getrobust(attr, &robust);
        pthread_mutexattr_getprotocol(attr, &protocol);
    }
    if (robust != PTHREAD_MUTEX_STALLED || protocol != PTHREAD_PRIO_NONE) return REAL(pthread_mutex_init)(m, attr);
    memset(&m->__data.__list, 0, sizeof m->__data.__list);
    // Another thread may read these with atomics without having seen this
    // store synchronize (the mutex reached it through a library that is not
    // instrumented): atomic stores too, so that ThreadSanitizer sees no race.
    __atomic_store_n(&m->__data.__lock, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->__data.__count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->__data.__nusers, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->__data.__spins, 0, __ATOMIC_RELAXED);
#if defined(__x86_64__)
    __atomic_store_n(&m->__data.__elision, 0, __ATOMIC_RELAXED); // x86_64's lock-elision field
#endif
    set_owner(m, 0);
    __atomic_store_n(&m->__data.__kind, (type & KIND_TYPE) | (pshared == PTHREAD_PROCESS_SHARED ? KIND_PSHARED : 0),
                     __ATOMIC_RELEASE);
    return 0;
}

GREEN_EXPORT int pthread_mutex_destroy(pthread_mutex_t *m) {
    int kind = kind_of(m);
    if (kind & KIND_LIBC) return REAL(pthread_mutex_destroy)(m);
    if (__atomic_load_n(word_of(m), __ATOMIC_RELAXED) != 0) return EBUSY;
    __atomic_store_n(&m->__data.__kind, -1, __ATOMIC_RELAXED); // as glibc: a destroyed mutex fails with EINVAL
    return 0;
}

/// Take the lock word, parking until it is free or the deadline passes.
static int acquire(pthread_mutex_t *m, int kind, clockid_t clock, const struct timespec *abstime) {
    uint32_t *word = word_of(m);
    uint32_t free_ = 0;
    if (__atomic_compare_exchange_n(word, &free_, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 0;
    if (abstime && !timespec_ok(abstime)) return EINVAL;
    while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0) {
        int r = gfutex_wait(word, 2, clock, abstime, futex_flags(kind), "pthread_mutex");
        if (r == ETIMEDOUT) return ETIMEDOUT;
    }
    return 0;
}

static int lock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
    int kind = kind_of(m);
    if (kind < 0) return EINVAL;
    int self = shim_owner_id();
    int type = kind & KIND_TYPE;
    if (type == PTHREAD_MUTEX_RECURSIVE && owner_of(m) == self) {
        if (m->__data.__count == UINT_MAX) return EAGAIN;
        m->__data.__count++;
        return 0;
    }
    if (type == PTHREAD_MUTEX_ERRORCHECK && owner_of(m) == self) return EDEADLK;
    int r = acquire(m, kind, clock, abstime);
    if (r) return r;
    set_owner(m, self);
    m->__data.__count = 1;
    m->__data.__nusers++;
    return 0;
}

/// The lock was wanted: wake one waiter. A fiber that unlocks then lets the
/// woken one run before it goes on: fibers are never preempted, so one that
/// locks again at once (a loop around a locked section that parks) would
/// take the lock back every time and the waiter would never get it.
static void wake_waiter(pthread_mutex_t *m, int kind) {
    if (gfutex_wake(word_of(m), 1, futex_flags(kind)) > 0 && green_on_fiber()) shim_yield_keeping_interrupts();
}

/// A normal (default) mutex of this process: the kind every lock fast path is for.
static inline int plain_kind(int kind) { return kind >= 0 && (kind & (KIND_TYPE | KIND_LIBC)) == 0; }

GREEN_EXPORT int pthread_mutex_lock(pthread_mutex_t *m) {
    int kind = kind_of(m);
    uint32_t free_ = 0;
    // The uncontended default mutex first, in a few instructions, as glibc's.
    if (__builtin_expect(plain_kind(kind), 1) &&
        __atomic_compare_exchange_n(word_of(m), &free_, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        set_owner(m, shim_thread_owner_id());
        m->__data.__count = 1;
        m->__data.__nusers++;
        return 0;
    }
    if (kind & KIND_LIBC)
        return shim_owner_word_kind(kind) ? shim_owner_word_lock(m, 0, CLOCK_REALTIME, NULL) : REAL(pthread_mutex_lock)(m);
    return lock(m, CLOCK_REALTIME, NULL);
}

GREEN_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abstime) {
    int kind = kind_of(m);
    if (kind & KIND_LIBC)
        return shim_owner_word_kind(kind) ? shim_owner_word_lock(m, 0, CLOCK_REALTIME, abstime)
                                          : REAL(pthread_mutex_timedlock)(m, abstime);
    return lock(m, CLOCK_REALTIME, abstime);
}

GREEN_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime) {
    int kind = kind_of(m);
    if ((kind & KIND_LIBC) && !shim_owner_word_kind(kind)) return REAL(pthread_mutex_clocklock)(m, clock, abstime);
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    if (kind & KIND_LIBC) return shim_owner_word_lock(m, 0, clock, abstime);
    return lock(m, clock, abstime);
}

GREEN_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m) {
    int kind = kind_of(m);
    if (kind & KIND_LIBC)
        return shim_owner_word_kind(kind) ? shim_owner_word_lock(m, 1, CLOCK_REALTIME, NULL) : REAL(pthread_mutex_trylock)(m);
    if (kind < 0) return EINVAL;
    int self = shim_owner_id();
    if ((kind & KIND_TYPE) == PTHREAD_MUTEX_RECURSIVE && owner_of(m) == self) {
        if (m->__data.__count == UINT_MAX) return EAGAIN;
        m->__data.__count++;
        return 0;
    }
    uint32_t free_ = 0;
    if (!__atomic_compare_exchange_n(word_of(m), &free_, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return EBUSY;
    set_owner(m, self);
    m->__data.__count = 1;
    m->__data.__nusers++;
    return 0;
}

GREEN_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m) {
    int kind = kind_of(m);
    if (__builtin_expect(plain_kind(kind), 1)) { // no owner check, as glibc's
        set_owner(m, 0);
        m->__data.__nusers--;
        if (__atomic_exchange_n(word_of(m), 0, __ATOMIC_RELEASE) == 2) wake_waiter(m, kind);
        return 0;
    }
    if (kind & KIND_LIBC) return shim_owner_word_kind(kind) ? shim_owner_word_unlock(m) : REAL(pthread_mutex_unlock)(m);
    if (kind < 0) return EINVAL;
    int type = kind & KIND_TYPE;
    if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) {
        if (owner_of(m) != shim_owner_id()) return EPERM;
        if (type == PTHREAD_MUTEX_RECURSIVE && --m->__data.__count != 0) return 0;
    }
    set_owner(m, 0);
    m->__data.__nusers--;
    if (__atomic_exchange_n(word_of(m), 0, __ATOMIC_RELEASE) == 2) wake_waiter(m, kind);
    return 0;
}

GREEN_EXPORT int pthread_mutex_consistent(pthread_mutex_t *m) {
    return shim_owner_word_kind(kind_of(m)) ? shim_owner_word_consistent(m) : REAL(pthread_mutex_consistent)(m);
}

// The name before POSIX took it, which programs built against glibc before
// 2.34 still call (newer headers redirect it to pthread_mutex_consistent).
int shim_mutex_consistent_np(pthread_mutex_t *m) __asm__("pthread_mutex_consistent_np");
GREEN_EXPORT int shim_mutex_consistent_np(pthread_mutex_t *m) { return pthread_mutex_consistent(m); }
