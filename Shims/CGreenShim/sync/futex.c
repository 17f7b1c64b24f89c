// futex.c — the green futex: wait on a word, for fibers and threads alike.
//
// Fibers waiting on an address are kept in a hashed table of buckets, each
// waiter a record on its own stack; a waker takes the bucket's lock, unlinks
// up to n waiters and wakes them (directly on its own hub, through the hub's
// remote-wake list from any other thread). Threads that are not fibers use
// the kernel's futex on the same word, counted so that a wake makes the
// system call only when one of them may be asleep.
//
// A wait with GF_CANCEL is a cancellation point (pthread_cond_wait, sem_wait,
// pthread_join), as glibc's futex_wait_cancelable: a fiber thread acts on a
// pending cancellation on entry, parks interruptibly so that pthread_cancel
// can end the park (the preload library's cancel.c), and acts on it when woken; a thread in the
// kernel turns on asynchronous cancellation around the system call, as glibc
// does, so that pthread_cancel's SIGCANCEL ends the wait.
#include "sync.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BUCKETS 512

typedef struct gwaiter {
    const uint32_t *word;
    uint32_t bitset; ///< FUTEX_WAIT_BITSET's mask: a wake whose mask shares no bit passes it by
    struct gwaiter *next, *prev;
    green_remote_wake wake;
    int woken;  ///< unlinked by a waker
    int remote; ///< ...which sent the wake through the hub's remote list
    int shared; ///< waits on the word as a shared futex: only a shared wake ends it (as in the kernel,
                ///< where a private and a shared futex on one address are two futexes)
} gwaiter;

typedef struct bucket {
    _Atomic(void *) holder; ///< the holding thread's token while locked
    gwaiter *head, *tail;
} bucket;

static bucket table[BUCKETS];
static _Atomic int kernel_waiters; ///< threads inside FUTEX_WAIT right now
static __thread char thread_token __attribute__((tls_model("initial-exec"))); // its address names a thread without a hub

/// Names the OS thread holding a bucket: its hub (shared by the fiber threads
/// it runs, each of which has TLS of its own), else its own TLS.
static inline void *holder_token(void) {
    green_sched *s = green_sched_current();
    return s ? (void *)s : (void *)&thread_token;
}

static bucket *bucket_of(const uint32_t *word) {
    uintptr_t a = (uintptr_t)word;
    return &table[(a >> 2 ^ a >> 11) % BUCKETS];
}

static void bucket_lock(bucket *b) {
    void *none = NULL, *me = holder_token();
    while (!atomic_compare_exchange_weak_explicit(&b->holder, &none, me, memory_order_acquire,
                                                  memory_order_relaxed)) {
        none = NULL;
        GREEN_SYSCALL(SYS_sched_yield); // held for a few instructions by another thread
    }
}

/// For signal handlers: fails instead of spinning forever when the interrupted
/// code on this very thread holds the lock.
static int bucket_lock_from_handler(bucket *b) {
    void *me = holder_token();
    for (;;) {
        void *none = NULL;
        if (atomic_compare_exchange_weak_explicit(&b->holder, &none, me, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
        if (atomic_load_explicit(&b->holder, memory_order_relaxed) == me) return 0;
        GREEN_SYSCALL(SYS_sched_yield);
    }
}

static void bucket_unlock(bucket *b) { atomic_store_explicit(&b->holder, NULL, memory_order_release); }

static void link_waiter(bucket *b, gwaiter *w) {
    w->next = NULL;
    w->prev = b->tail;
    if (b->tail) b->tail->next = w;
    else b->head = w;
    b->tail = w;
}

static void unlink_waiter(bucket *b, gwaiter *w) {
    if (w->prev) w->prev->next = w->next;
    else b->head = w->next;
    if (w->next) w->next->prev = w->prev;
    else b->tail = w->prev;
}


int64_t gfutex_deadline(clockid_t clock, const struct timespec *abstime) {
    if (!abstime) return GREEN_NO_DEADLINE;
    if (clock == CLOCK_MONOTONIC) return green_timespec_ns(abstime);
    struct timespec now;
    clock_gettime(clock, &now);
    return green_deadline_in(green_timespec_ns(abstime) - green_timespec_ns(&now));
}

// ---- threads: the kernel's futex --------------------------------------------------

/// The kernel futex op for `flags`: a word only this process uses takes the
/// private futex, as glibc's own primitives do (a shared wake does not reach a
/// private waiter, nor the reverse).
static inline int kernel_op(int cmd, int flags) { return cmd | ((flags & GF_SHARED) ? 0 : FUTEX_PRIVATE_FLAG); }

static void kernel_wait_cancelled(void *unused) {
    (void)unused;
    atomic_fetch_sub(&kernel_waiters, 1);
}

static int kernel_wait(uint32_t *word, uint32_t expected, clockid_t clock, const struct timespec *abstime,
                       int flags, uint32_t bitset) {
    int op = kernel_op(FUTEX_WAIT_BITSET, flags) | (clock == CLOCK_REALTIME ? FUTEX_CLOCK_REALTIME : 0);
    struct timespec mono;
    if (abstime && clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) { // e.g. CLOCK_BOOTTIME
        int64_t d = gfutex_deadline(clock, abstime);
        mono = green_ns_timespec(d);
        abstime = &mono;
    }
    atomic_fetch_add(&kernel_waiters, 1);
    long r;
    int err;
    if (flags & GF_CANCEL) {
        // glibc's __pthread_enable_asynccancel/__pthread_disable_asynccancel
        // around the system call, with the public calls: a pending
        // cancellation acts in the first one; one that comes during the wait
        // sends SIGCANCEL, whose handler unwinds from here.
        int oldtype;
        pthread_cleanup_push(kernel_wait_cancelled, NULL);
        REAL(pthread_setcanceltype)(PTHREAD_CANCEL_ASYNCHRONOUS, &oldtype);
        r = GREEN_SYSCALL(SYS_futex, word, op, expected, abstime, NULL, bitset);
        err = r == 0 ? 0 : errno;
        REAL(pthread_setcanceltype)(oldtype, NULL);
        pthread_cleanup_pop(0);
    } else {
        r = GREEN_SYSCALL(SYS_futex, word, op, expected, abstime, NULL, bitset);
        err = r == 0 ? 0 : errno;
    }
    atomic_fetch_sub(&kernel_waiters, 1);
    if (err == EINTR && (flags & GF_EINTR)) return EINTR;
    return err == ETIMEDOUT ? ETIMEDOUT : 0; // EAGAIN (changed) and EINTR are wake-ups too
}

// ---- fibers ---------------------------------------------------------------------------

/// Does a park's wake end a wait that the kernel ends with EINTR (`eintr`:
/// sem_wait, futex)? Its park said which handlers do (GREEN_PARK_NO_RESTART).
static inline int signal_ends_wait(int reason, int eintr) { return eintr && reason == GREEN_WAKE_SIGNAL; }

/// Park until woken for `word` (gfutex_wake), the word is no longer
/// `expected`, or the deadline. `shared`: another process may change the
/// word too, and nobody there wakes us: look again every millisecond or so
/// (up to 16 ms between looks); this process's wakes still come at once.
/// `park_flags`: 0 in a cancellation point (pthread_cancel ends the park:
/// ECANCELED), else GREEN_PARK_UNINTERRUPTIBLE; GREEN_PARK_SIGNALS always.
/// `eintr`: a signal's wake ends the wait (EINTR), else it goes on (see signal_ends_wait).
static int fiber_wait(uint32_t *word, uint32_t expected, int64_t deadline, uint32_t bitset, int park_flags,
                      int eintr, int shared, const char *label) {
    bucket *b = bucket_of(word);
    gwaiter w = {.word = word, .bitset = bitset, .wake = {.fiber = green_fiber_current()}, .shared = shared};
    bucket_lock(b);
    if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected) {
        bucket_unlock(b);
        return 0;
    }
    link_waiter(b, &w);
    bucket_unlock(b);
    green_set_wait_label(label);
    int64_t pause = 1000000;
    for (;;) {
        int64_t until = deadline;
        if (shared) {
            int64_t now = green_now_ns();
            if (now < deadline && deadline - now > pause) until = now + pause;
            if (pause < 16000000) pause *= 2;
        }
        int r = green_park_until(until, park_flags);
        bucket_lock(b);
        if (!w.woken && r == GREEN_WAKE_DEADLINE && until != deadline) { // a look for another process's change
            int changed = __atomic_load_n(word, __ATOMIC_ACQUIRE) != expected;
            if (changed) unlink_waiter(b, &w);
            bucket_unlock(b);
            if (changed) return 0;
            green_set_wait_label(label);
            continue;
        }
        if (w.woken) {
            bucket_unlock(b);
            // A wake from another thread is on its way: it must land here,
            // not in some later park of this fiber.
            while (w.remote && !w.wake.delivered) green_park_until(GREEN_NO_DEADLINE, GREEN_PARK_UNINTERRUPTIBLE);
            return 0;
        }
        if (r == GREEN_WAKE_DEADLINE || r == GREEN_WAKE_CANCELLED || signal_ends_wait(r, eintr)) {
            unlink_waiter(b, &w);
            bucket_unlock(b);
            return r == GREEN_WAKE_DEADLINE ? ETIMEDOUT : r == GREEN_WAKE_CANCELLED ? ECANCELED : EINTR;
        }
        // Not for us (a handler with SA_RESTART ran, say): park again.
        bucket_unlock(b);
        green_set_wait_label(label);
    }
}

int gfutex_wait_bitset(uint32_t *word, uint32_t expected, clockid_t clock, const struct timespec *abstime,
                       int flags, uint32_t bitset, const char *label) {
    if (abstime && !timespec_ok(abstime)) return EINVAL;
    if (!green_on_fiber()) return kernel_wait(word, expected, clock, abstime, flags, bitset);
    int64_t deadline = gfutex_deadline(clock, abstime);
    // A cancellation point on a fiber thread parks interruptibly; any other
    // wait acts only on an asynchronous cancellation.
    int point = 0;
    if (flags & GF_CANCEL) point = shim_cancel_point_enter();
    else shim_cancel_async_point();
    // A handler for this thread runs during any wait, as natively.
    int park_flags = (point ? 0 : GREEN_PARK_UNINTERRUPTIBLE) | GREEN_PARK_SIGNALS;
    // The kernel restarts an untimed FUTEX_WAIT after SA_RESTART handlers,
    // never a timed one.
    int eintr = (flags & GF_EINTR) != 0;
    if (eintr && abstime) park_flags |= GREEN_PARK_NO_RESTART;
    // The waker may be another thread (a Dispatch worker, a thread of the
    // program): while parked here, the hub must not take "no fiber ready and
    // nothing to wait for" as a deadlock. (Fibers that deadlock on each
    // other's locks hang, as threads would.)
    green_sched *s = green_sched_current();
    green_sched_retain_external(s);
    int r = fiber_wait(word, expected, deadline, bitset, park_flags, eintr, (flags & GF_SHARED) != 0, label);
    green_sched_release_external(s);
    if (point) shim_cancel_point_leave(point);
    else shim_cancel_async_point();
    return r == ECANCELED ? 0 : r; // woken for a cancellation it did not act on: a spurious wake-up
}

int gfutex_wait(uint32_t *word, uint32_t expected, clockid_t clock, const struct timespec *abstime, int flags,
                const char *label) {
    return gfutex_wait_bitset(word, expected, clock, abstime, flags, FUTEX_BITSET_MATCH_ANY, label);
}

// ---- waking -------------------------------------------------------------------------------

#define DEFERRED_SLOTS 64
static _Atomic(uint32_t *) deferred[DEFERRED_SLOTS];
static _Atomic int deferred_count; ///< words noted in `deferred`
static _Atomic int deferred_overflow; ///< a wake found every slot taken: wake everyone

/// A signal handler interrupted this thread inside a bucket: note the word for
/// the hub, which wakes all its waiters soon (they recheck their condition).
/// With every slot taken, the hub wakes every waiter of every word instead:
/// spurious wake-ups are allowed, a lost one never is.
static void defer_wake(uint32_t *word) {
    int noted = 0;
    for (int i = 0; i < DEFERRED_SLOTS && !noted; i++) {
        uint32_t *none = NULL;
        noted = atomic_compare_exchange_strong(&deferred[i], &none, word);
    }
    if (noted) atomic_fetch_add(&deferred_count, 1);
    if (!noted) atomic_store(&deferred_overflow, 1);
    green_sched *s = green_sched_current();
    if (s) green_sched_notify(s);
}

long gfutex_kernel_wait_raw(uint32_t *word, int op, uint32_t expected, const struct timespec *timeout,
                            uint32_t bitset) {
    atomic_fetch_add(&kernel_waiters, 1);
    long r = GREEN_SYSCALL(SYS_futex, word, op, expected, timeout, NULL, bitset);
    int err = errno;
    atomic_fetch_sub(&kernel_waiters, 1);
    errno = err;
    return r;
}

static inline int deferred_pending(void) {
    return atomic_load_explicit(&deferred_count, memory_order_relaxed) > 0 ||
           atomic_load_explicit(&deferred_overflow, memory_order_relaxed);
}

/// Wake every fiber waiting on any word (after the deferred ring overflowed).
/// `flags`: GF_SIGNAL_SAFE where the caller may have interrupted a bucket's holder.
static void wake_everyone(int flags) {
    for (int i = 0; i < BUCKETS; i++) {
        bucket *b = &table[i];
        if (flags & GF_SIGNAL_SAFE) {
            if (!bucket_lock_from_handler(b)) { // held below us on this thread: later
                atomic_store(&deferred_overflow, 1);
                continue;
            }
        } else {
            bucket_lock(b);
        }
        for (gwaiter *w = b->head, *next; w; w = next) {
            next = w->next;
            unlink_waiter(b, w);
            w->woken = 1;
            if (flags & GF_SIGNAL_SAFE) {
                w->remote = 1;
                green_wake_remote(&w->wake);
            } else {
                w->remote = green_wake_from_anywhere(&w->wake);
            }
        }
        bucket_unlock(b);
    }
}

static __thread int delivering __attribute__((tls_model("initial-exec"))); // this thread runs deliver_deferred

static void deliver_deferred(int flags) {
    if (!deferred_pending() || delivering) return;
    delivering = 1;
    for (int i = 0; i < DEFERRED_SLOTS; i++) {
        if (!atomic_load_explicit(&deferred[i], memory_order_relaxed)) continue;
        uint32_t *word = atomic_exchange(&deferred[i], NULL);
        if (!word) continue;
        atomic_fetch_sub(&deferred_count, 1);
        gfutex_wake(word, INT_MAX, flags | GF_ANY_KIND); // (which kind the put-off wake was for is not kept)
    }
    if (atomic_exchange(&deferred_overflow, 0)) wake_everyone(flags);
    delivering = 0;
}

void gfutex_deliver_deferred(void) { deliver_deferred(0); }

/// A fork child keeps the forking thread alone: a bucket another thread held
/// is free, and only waiters of the forking thread's own hub (`keep`, NULL:
/// none) are still there to be woken.
static void forget_other_threads(green_sched *keep) {
    for (int i = 0; i < BUCKETS; i++) {
        bucket *b = &table[i];
        atomic_store(&b->holder, NULL);
        for (gwaiter *w = b->head, *next; w; w = next) {
            next = w->next;
            if (!keep || green_fiber_sched(w->wake.fiber) != keep) unlink_waiter(b, w);
        }
    }
    atomic_store(&kernel_waiters, 0);
    for (int i = 0; i < DEFERRED_SLOTS; i++) atomic_store(&deferred[i], NULL);
    atomic_store(&deferred_count, 0);
    atomic_store(&deferred_overflow, 0);
}

void gfutex_after_fork_in_child(void) {
    // Only the forking fiber lives on, and it waits on nothing: every waiter
    // left in the table belongs to a thread or fiber that is gone.
    forget_other_threads(NULL);
}

/// A linked program's fork child keeps the forking thread's hub and its fibers.
static void after_fork_in_child(void) { forget_other_threads(green_sched_current()); }

__attribute__((constructor)) static void install_hooks(void) {
    atomic_store(&green_notify_hook, gfutex_deliver_deferred);
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

int gfutex_wake(uint32_t *word, int n, int flags) { return gfutex_wake_bitset(word, n, FUTEX_BITSET_MATCH_ANY, flags); }

int gfutex_wake_bitset(uint32_t *word, int n, uint32_t bitset, int flags) {
    bucket *b = bucket_of(word);
    int woke = 0;
    { // this process's fibers, also on a shared word (fiber_wait: they poll only for another process's changes)
        int locked = 1;
        if (flags & GF_SIGNAL_SAFE) {
            // Held by the code this handler interrupted: the fibers' wake is
            // put off (the threads' below is async-signal-safe).
            locked = bucket_lock_from_handler(b);
            if (!locked) defer_wake(word);
        } else {
            bucket_lock(b);
        }
        int shared = (flags & GF_SHARED) != 0, any_kind = (flags & GF_ANY_KIND) != 0;
        for (gwaiter *w = locked ? b->head : NULL, *next; w && woke < n; w = next) {
            next = w->next;
            if (w->word != word || !(w->bitset & bitset) || (w->shared != shared && !any_kind)) continue;
            unlink_waiter(b, w);
            w->woken = 1;
            if (flags & GF_SIGNAL_SAFE) {
                w->remote = 1;
                green_wake_remote(&w->wake); // never touch the ready queue from a handler
            } else {
                w->remote = green_wake_from_anywhere(&w->wake);
            }
            woke++;
        }
        if (locked) bucket_unlock(b);
    }
    // Pairs with the waiter's count-then-check: whoever changed the word did
    // so before this load, so a thread that has not yet counted itself will
    // find the new value in the kernel.
    atomic_thread_fence(memory_order_seq_cst);
    // A shared word's kernel waiters may be threads of another process, which
    // this process' count does not see.
    if (woke < n && !(flags & GF_FIBERS_ONLY) &&
        ((flags & GF_SHARED) || atomic_load_explicit(&kernel_waiters, memory_order_relaxed) > 0))
    {
        long r = GREEN_SYSCALL(SYS_futex, word, kernel_op(FUTEX_WAKE_BITSET, flags), n - woke, NULL, NULL, bitset);
        if (r > 0) woke += (int)r;
    }
    // A handler that interrupted this thread inside the bucket put its wake
    // off; with no hub of its own to notify, this thread finishes it now (in
    // a handler's way: this call may itself be a handler's).
    if (__builtin_expect(deferred_pending(), 0) && !green_sched_current()) deliver_deferred(GF_SIGNAL_SAFE);
    return woke;
}

// ---- test support --------------------------------------------------------------------------
// Hidden like the rest: the Swift tests link the shim statically and reach
// these; no program sees them.

int gfutex_test_bucket_index(const uint32_t *word) { return (int)(bucket_of(word) - table); }
void gfutex_test_hold_bucket(const uint32_t *word) { bucket_lock(bucket_of(word)); }
void gfutex_test_release_bucket(const uint32_t *word) { bucket_unlock(bucket_of(word)); }
