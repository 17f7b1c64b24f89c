// sync.h — pthread synchronization that parks fibers: the green futex and
// what the primitives built on it (mutex.c, cond.c, rwlock.c, sem.c,
// barrier.c, once.c, spin.c, futex_syscall.c) share.
//
// The green futex waits on a 32-bit word until another party changes it and
// wakes the address: a fiber parks on its hub, any other thread (a library's
// own thread, a thread pool worker, a thread of a program that links Green)
// sleeps in the kernel's futex. Wakes reach both kinds. Every primitive is a
// textbook futex algorithm on top of it, and serves both the linked library
// (a Swift program's fibers, its plain threads) and `green run`'s preload
// library (whose pthreads are fibers). Off a fiber each behaves as libc's.
#ifndef GREEN_SHIM_SYNC_H
#define GREEN_SHIM_SYNC_H

#include "../shim.h"
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>

GREEN_HIDDEN_BEGIN

// ---- the green futex (futex.c) -----------------------------------------------------

enum {
    GF_SHARED = 1,      ///< the word may be changed by another process: fibers poll it
    GF_SIGNAL_SAFE = 2, ///< the waker may be a signal handler (sem_post)
    GF_FIBERS_ONLY = 4, ///< wake fibers only: the caller has made the kernel's wake itself
    GF_CANCEL = 8,      ///< a cancellation point (cond, sem, join): pthread_cancel acts here (the preload library's cancel.c)
    GF_EINTR = 16,      ///< a handler without SA_RESTART ends the wait with EINTR (sem_wait, futex), as the kernel's
    GF_ANY_KIND = 32,   ///< a wake for shared and private waiters of the word alike (a put-off wake)
};

/// Wait while *word == expected, until woken or `abstime` on `clock` passes
/// (NULL: no timeout). Returns 0 (woken, or the word had changed: recheck),
/// ETIMEDOUT, EINVAL for a bad timespec, or with GF_EINTR, EINTR. Spurious
/// returns are allowed. A signal handler for the waiting thread runs during
/// the wait, as natively; then the wait goes on, unless GF_EINTR asks for
/// the kernel's EINTR (a handler without SA_RESTART).
/// With GF_CANCEL the wait is a cancellation point: a pending cancellation
/// acts on entry and when it wakes the wait (the caller's pthread_cleanup_push
/// handlers undo its own state).
/// `label` (a static string) says in fiber dumps what a parked fiber waits for.
int gfutex_wait(uint32_t *word, uint32_t expected, clockid_t clock, const struct timespec *abstime, int flags,
                const char *label);
/// Wake up to n waiters of `word`; returns how many were woken (fibers, and
/// threads as the kernel counts them).
int gfutex_wake(uint32_t *word, int n, int flags);
/// The same with FUTEX_WAIT_BITSET/FUTEX_WAKE_BITSET's masks: a wake reaches
/// only the waiters whose mask shares a bit with its own (non-zero masks).
int gfutex_wait_bitset(uint32_t *word, uint32_t expected, clockid_t clock, const struct timespec *abstime,
                       int flags, uint32_t bitset, const char *label);
int gfutex_wake_bitset(uint32_t *word, int n, uint32_t bitset, int flags);
/// A thread that is not a fiber waits in the kernel as it asked (syscall(SYS_futex)),
/// counted so that wakes from fibers reach it. Returns the system call's result.
long gfutex_kernel_wait_raw(uint32_t *word, int op, uint32_t expected, const struct timespec *timeout,
                            uint32_t bitset);
/// On the hub: finish wakes that signal handlers had to put off.
void gfutex_deliver_deferred(void);
/// In a fork child: forget every waiter (their threads and fibers are gone).
void gfutex_after_fork_in_child(void);

/// abstime on `clock` as a monotonic deadline in ns (GREEN_NO_DEADLINE for NULL).
int64_t gfutex_deadline(clockid_t clock, const struct timespec *abstime);
/// A valid abstime? (tv_nsec in [0, 1e9))
static inline int timespec_ok(const struct timespec *t) { return t->tv_nsec >= 0 && t->tv_nsec < 1000000000; }

/// syscall(SYS_futex, …)'s arguments: the wait and wake operations on the
/// green futex, everything else the kernel's. Returns as the system call.
long shim_futex_syscall(uint32_t *word, int op, uint32_t val, const struct timespec *timeout, uint32_t *word2,
                        uint32_t val3);

/// Let the other ready fibers run once (a fair turn inside a lock call). A
/// cancellation or timeout that the yield reports stays pending for the
/// caller's next park: a lock call has no way to report it, and must not lose it.
static inline void shim_yield_keeping_interrupts(void) {
    int reason = green_yield();
    if (reason) green_rearm_interrupt(reason);
}

// ---- who is asking ------------------------------------------------------------------

/// What `green run`'s preload library adds (NULL in a linked program, where
/// fibers are not pthreads): fiber threads' ids and their cancellation.
typedef struct shim_pthread_hooks {
    /// The caller's owner id for mutexes and rwlocks: a fiber thread's id, else the kernel tid.
    int (*self_id)(void);
    /// The kernel tid standing for `tid` in a call that takes one (-1: a fiber thread that is gone).
    pid_t (*kernel_tid)(pid_t tid);
    /// A wait that is a cancellation point, on a fiber thread: `enter` acts on
    /// a pending cancellation and returns non-zero when the park may be
    /// cancelled; `leave` gets that value back and acts on one that came meanwhile.
    int (*cancel_point_enter)(void);
    void (*cancel_point_leave)(int entered);
    /// Any other park: acts only on an asynchronous-type cancellation.
    void (*cancel_async_point)(void);
    /// pthread_testcancel for any caller.
    void (*testcancel)(void);
    /// The signal mask of ppoll, pselect and epoll_pwait on a fiber thread:
    /// make `mask` the calling thread's (a pending signal it unblocks is
    /// handled at once) and store its mask in *old; returns handlers_run()
    /// from before. `entering`: 1 as the call begins (from then on any
    /// handler for the thread ends it, as a handler ends sigsuspend), 0 as
    /// it ends.
    unsigned (*swap_mask)(const sigset_t *mask, sigset_t *old, int entering);
    /// Handlers run for the calling thread so far (a counter).
    unsigned (*handlers_run)(void);
    /// The calling thread's robust-mutex list (glibc's robust_head in its
    /// descriptor); NULL where glibc's own robust and priority-inheritance
    /// mutexes are right (pthreads are OS threads) or the layout is unknown.
    void *(*robust_head)(void);
} shim_pthread_hooks;
extern const shim_pthread_hooks *_Atomic shim_pthreads;

/// The calling OS thread's kernel tid (cached).
pid_t shim_kernel_tid(void);
/// Its cache (0 until first asked, and in a fork child).
extern __thread int shim_cached_tid __attribute__((tls_model("initial-exec")));
int shim_owner_id_slow(void);
int shim_thread_owner_id_slow(void);

/// The owner a default (normal) mutex records, as glibc's: the caller's tid
/// as the program sees it (a fiber thread's own under `green run`). Nothing
/// checks it, so fibers of one thread need no ids of their own for it.
static inline int shim_thread_owner_id(void) {
    int tid = shim_cached_tid;
    if (__builtin_expect(!shim_pthreads && tid, 1)) return tid;
    return shim_thread_owner_id_slow();
}

/// The caller's owner id for mutexes and rwlocks. Every fiber of a hub shares
/// its OS thread's tid, so a fiber has an id of its own, above any kernel tid.
/// (Inline: it is on every lock's path; a plain thread's costs two loads.)
static inline int shim_owner_id(void) {
    if (__builtin_expect(!shim_pthreads, 1)) {
        green_fiber *f = green_tls_parkable;
        int id = f ? green_fiber_cached_owner_id(f) : shim_cached_tid;
        if (__builtin_expect(id != 0, 1)) return id;
    }
    return shim_owner_id_slow();
}

// ---- robust and priority-inheritance mutexes (owner_word_mutex.c) -------------------

/// Taken by owner_word_mutex.c, not libc: a robust or priority-inheritance
/// (not priority-protection) mutex under `green run`.
int shim_owner_word_kind(int kind);
/// pthread_mutex_lock (try 0) or trylock (try 1), with an optional deadline.
int shim_owner_word_lock(pthread_mutex_t *m, int try, clockid_t clock, const struct timespec *abstime);
int shim_owner_word_unlock(pthread_mutex_t *m);
int shim_owner_word_consistent(pthread_mutex_t *m);
/// A thread with id `id` ends: the kernel's work for its robust list (its
/// robust_head), which the kernel does not know for a fiber thread.
void shim_robust_owner_gone(void *robust_head, int id);

// Cancellation exists for fiber threads (the hooks) and native threads (libc's).
static inline int shim_cancel_point_enter(void) {
    const shim_pthread_hooks *h = shim_pthreads;
    return h ? h->cancel_point_enter() : 0;
}
static inline void shim_cancel_point_leave(int entered) {
    const shim_pthread_hooks *h = shim_pthreads;
    if (h) h->cancel_point_leave(entered);
}
static inline void shim_cancel_async_point(void) {
    const shim_pthread_hooks *h = shim_pthreads;
    if (h) h->cancel_async_point();
}
static inline void shim_testcancel(void) {
    const shim_pthread_hooks *h = shim_pthreads;
    if (h) h->testcancel();
    else REAL(pthread_testcancel)();
}

// Test support (futex.c): which bucket a word hashes to, and holding it as a
// signal handler's interrupted code would (so the handler's wake is deferred).
int gfutex_test_bucket_index(const uint32_t *word);
void gfutex_test_hold_bucket(const uint32_t *word);
void gfutex_test_release_bucket(const uint32_t *word);

GREEN_HIDDEN_END

#endif
