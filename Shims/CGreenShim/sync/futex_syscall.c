// futex_syscall.c — syscall(SYS_futex, …) on the green futex: a wait on a
// fiber parks it, a wake reaches fibers and threads alike, and every other
// caller gets the kernel's call unchanged.
#include "sync.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static long fail(int err) {
    errno = err;
    return -1;
}

/// FUTEX_WAIT (relative timeout) and FUTEX_WAIT_BITSET (absolute).
static long futex_wait_op(uint32_t *word, int op, uint32_t expected, const struct timespec *timeout, uint32_t bitset) {
    int cmd = op & FUTEX_CMD_MASK;
    // The kernel reads the timeout first: EFAULT for a bad one, not a crash.
    struct timespec t;
    if (timeout && shim_copy_in(&t, timeout, sizeof t) != 0) return -1;
    if (timeout) timeout = &t;
    if (timeout && (!timespec_ok(timeout) || timeout->tv_sec < 0)) return fail(EINVAL);
    if (((uintptr_t)word & 3) || !bitset) return fail(EINVAL);
    if (!green_on_fiber()) return gfutex_kernel_wait_raw(word, op, expected, timeout, bitset);

    // The kernel reads the word for us, without waiting: EFAULT for an address
    // the program may not read, EAGAIN when it no longer holds `expected`.
    // (A compare-and-requeue of nobody onto itself.)
    int private_flag = op & FUTEX_PRIVATE_FLAG;
    if (GREEN_SYSCALL(SYS_futex, word, FUTEX_CMP_REQUEUE | private_flag, 0, 0, word, expected) < 0) return -1;

    clockid_t clock = (op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    struct timespec until;
    const struct timespec *abstime = timeout;
    if (timeout && cmd == FUTEX_WAIT) { // relative: a deadline on the monotonic clock
        until = green_ns_timespec(green_deadline_in(green_timespec_ns(timeout)));
        clock = CLOCK_MONOTONIC;
        abstime = &until;
    }
    int flags = (private_flag ? 0 : GF_SHARED) | GF_EINTR; // the kernel's FUTEX_WAIT fails with EINTR too
    int r = gfutex_wait_bitset(word, expected, clock, abstime, flags, bitset, "futex");
    return r ? fail(r) : 0;
}

// ---- priority-inheritance locks (Swift's Synchronization.Mutex, Dispatch's locks) ----
//
// The word holds its owner's tid, with FUTEX_WAITERS set while somebody may
// wait. The kernel cannot tell the fibers of one OS thread apart (they share
// its tid: FUTEX_LOCK_PI would fail with EDEADLK or block the hub), so a
// fiber waits on the green futex: it sets FUTEX_WAITERS, parks until the
// word changes, and takes the word itself when it is free. Unlocking leaves
// the word to the kernel, which hands it to a thread waiting in the kernel if
// there is one, then wakes a parked fiber to try again. Under `green run`
// the tids in words are the program's (fiber threads' own ids, which the
// kernel does not know), so every caller waits and unlocks here.

/// The caller's tid as the program sees it (what it stores in the word).
static pid_t program_tid(void) { return shim_pthreads ? gettid() : shim_kernel_tid(); }

/// The owner part of a PI word, as the kernel reads it. (libdispatch sets
/// FUTEX_OWNER_DIED in words it failed to trylock, and counts on the unlock
/// to clear it: fiber-thread ids stay below that bit.)
static inline uint32_t pi_owner(uint32_t v) { return v & FUTEX_TID_MASK; }

static long pi_lock(uint32_t *word, int op, const struct timespec *abstime, int emulate_all) {
    int cmd = op & FUTEX_CMD_MASK;
    // FUTEX_LOCK_PI's timeout is absolute on CLOCK_REALTIME; FUTEX_LOCK_PI2's on CLOCK_MONOTONIC unless asked
    clockid_t clock = (cmd == FUTEX_LOCK_PI || (op & FUTEX_CLOCK_REALTIME)) ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    if (abstime && (!timespec_ok(abstime) || abstime->tv_sec < 0)) return fail(EINVAL);
    if ((uintptr_t)word & 3) return fail(EINVAL);
    uint32_t me = (uint32_t)program_tid();
    int flags = (op & FUTEX_PRIVATE_FLAG) ? 0 : GF_SHARED;
    uint32_t waited = 0; // once woken, keep FUTEX_WAITERS: other fibers may still wait
    for (;;) {
        uint32_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
        if (pi_owner(v) == 0) { // (a stale FUTEX_OWNER_DIED goes, as the kernel's lock drops it)
            if (__atomic_compare_exchange_n(word, &v, me | (v & FUTEX_WAITERS) | waited, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return 0;
            continue;
        }
        if (emulate_all && pi_owner(v) == me) return fail(EDEADLK); // fiber threads' ids are their own
        if (!(v & FUTEX_WAITERS)) {
            if (!__atomic_compare_exchange_n(word, &v, v | FUTEX_WAITERS, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                continue;
            v |= FUTEX_WAITERS;
        }
        if (gfutex_wait(word, v, clock, abstime, flags, "futex_lock_pi") == ETIMEDOUT) return fail(ETIMEDOUT);
        waited = FUTEX_WAITERS;
    }
}

static long pi_trylock(uint32_t *word, int emulate_all) {
    if ((uintptr_t)word & 3) return fail(EINVAL);
    uint32_t me = (uint32_t)program_tid();
    uint32_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    while (pi_owner(v) == 0)
        if (__atomic_compare_exchange_n(word, &v, me | (v & FUTEX_WAITERS), 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return 0;
    // A fiber cannot tell another fiber of its thread from itself: busy.
    return fail(emulate_all && pi_owner(v) == me ? EDEADLK : EAGAIN);
}

static long pi_unlock(uint32_t *word, int op, int emulate_all) {
    if ((uintptr_t)word & 3) return fail(EINVAL);
    int flags = (op & FUTEX_PRIVATE_FLAG) ? 0 : GF_SHARED;
    if (emulate_all) {
        if (pi_owner(__atomic_load_n(word, __ATOMIC_RELAXED)) != (uint32_t)program_tid()) return fail(EPERM);
        __atomic_store_n(word, 0, __ATOMIC_RELEASE);
        gfutex_wake(word, 1, flags);
        return 0;
    }
    // The kernel's unlock: to its own waiter, else the word becomes 0. First a
    // release on the word that ThreadSanitizer can see (the kernel's write it
    // cannot): whoever takes the lock next acquires on the same word.
    __atomic_fetch_add(word, 0, __ATOMIC_RELEASE);
    long r = GREEN_SYSCALL(SYS_futex, word, op, 0, NULL, NULL, 0);
    if (r < 0) return r;
    gfutex_wake(word, 1, flags | GF_FIBERS_ONLY);
    return 0;
}

static long pi_call(uint32_t *word, int op, const struct timespec *timeout) {
    int emulate_all = shim_pthreads != NULL;
    int cmd = op & FUTEX_CMD_MASK;
    if (!emulate_all && !green_on_fiber() && cmd != FUTEX_UNLOCK_PI) {
        long r = GREEN_SYSCALL(SYS_futex, word, op, 0, timeout, NULL, 0); // a thread waits in the kernel
        if (r == 0) (void)__atomic_load_n(word, __ATOMIC_ACQUIRE); // taken: the acquire pi_unlock's release pairs with
        return r;
    }
    // The emulation reads the timeout and the word in the program: checked
    // copies first, in the kernel's order (EFAULT, not a crash).
    struct timespec t;
    uint32_t v;
    if (timeout && cmd != FUTEX_UNLOCK_PI && cmd != FUTEX_TRYLOCK_PI) {
        if (shim_copy_in(&t, timeout, sizeof t) != 0) return -1;
        timeout = &t;
    }
    if (!((uintptr_t)word & 3) && shim_copy_in(&v, word, sizeof v) != 0) return -1;
    switch (cmd) {
    case FUTEX_TRYLOCK_PI:
        return pi_trylock(word, emulate_all);
    case FUTEX_UNLOCK_PI:
        return pi_unlock(word, op, emulate_all);
    default:
        return pi_lock(word, op, timeout, emulate_all);
    }
}

/// The green futex's wake for fibers, then the kernel's for everyone else.
long shim_futex_syscall(uint32_t *word, int op, uint32_t val, const struct timespec *timeout, uint32_t *word2,
                       uint32_t val3) {
    int cmd = op & FUTEX_CMD_MASK;
    int flags = (op & FUTEX_PRIVATE_FLAG) ? 0 : GF_SHARED;
    switch (cmd) {
    case FUTEX_WAIT:
        return futex_wait_op(word, op, val, timeout, FUTEX_BITSET_MATCH_ANY);
    case FUTEX_WAIT_BITSET:
        return futex_wait_op(word, op, val, timeout, val3);
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
        uint32_t bitset = cmd == FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY : val3;
        if (((uintptr_t)word & 3) || !bitset) return fail(EINVAL);
        return gfutex_wake_bitset(word, (int)val > 0 ? (int)val : 0, bitset, flags);
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE:
    case FUTEX_WAKE_OP: {
        // The kernel does the operation for the threads waiting in it; fibers
        // waiting on these words are woken instead of moved (a spurious
        // wake-up, which every futex user must handle), never left behind.
        long r = GREEN_SYSCALL(SYS_futex, word, op, val, timeout, word2, val3);
        if (r < 0) return r;
        int second = (int)(intptr_t)timeout; // val2: how many to requeue, or to wake on word2
        if (cmd == FUTEX_WAKE_OP) {
            r += gfutex_wake_bitset(word, (int)val, FUTEX_BITSET_MATCH_ANY, flags | GF_FIBERS_ONLY);
            r += gfutex_wake_bitset(word2, second, FUTEX_BITSET_MATCH_ANY, flags | GF_FIBERS_ONLY);
        } else {
            long more = (long)val + second;
            r += gfutex_wake_bitset(word, more > INT_MAX ? INT_MAX : (int)more, FUTEX_BITSET_MATCH_ANY,
                                    flags | GF_FIBERS_ONLY);
        }
        return r;
    }
    case FUTEX_LOCK_PI:
#ifdef FUTEX_LOCK_PI2
    case FUTEX_LOCK_PI2:
#endif
    case FUTEX_TRYLOCK_PI:
    case FUTEX_UNLOCK_PI:
        return pi_call(word, op, timeout);
    default: // requeue to PI and the rest: the kernel's, for the OS thread
        return GREEN_SYSCALL(SYS_futex, word, op, val, timeout, word2, val3);
    }
}
