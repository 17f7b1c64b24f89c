// preload.h — what the files of the preload library share: settings, libc's
// own pthread functions, the green futex and the fiber-thread records.
#ifndef GREEN_PRELOAD_H
#define GREEN_PRELOAD_H

#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unwind.h>
#include "green_core.h"
#include "green_hub_abi.h"
#include "green_time.h"
#include "../CGreenShim/sync/sync.h"

GREEN_HIDDEN_BEGIN

// ---- settings (preload.c) -------------------------------------------------------

/// pthreads become fibers (GREEN_THREADS=fiber, the default) or stay OS threads.
extern int preload_fiber_mode;
/// Stack for threads whose attributes set none (GREEN_STACK_SIZE, else glibc's default).
extern size_t preload_default_stack;
/// GREEN_DEBUG=1: say what the library does, on stderr.
extern int preload_debug;
void preload_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/// Set the library up (idempotent): read the settings, start the main hub.
void preload_init(void);

// ---- libc's own functions (real.c of the preload) ----------------------------------

#define PRELOAD_REAL_FUNCTIONS(X) \
    X(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)) \
    X(int, pthread_join, (pthread_t, void **)) \
    X(int, pthread_tryjoin_np, (pthread_t, void **)) \
    X(int, pthread_timedjoin_np, (pthread_t, void **, const struct timespec *)) \
    X(int, pthread_clockjoin_np, (pthread_t, void **, clockid_t, const struct timespec *)) \
    X(int, pthread_detach, (pthread_t)) \
    X(void, pthread_exit, (void *)) \
    X(pthread_t, pthread_self, (void)) \
    X(int, pthread_getattr_np, (pthread_t, pthread_attr_t *)) \
    X(int, pthread_setname_np, (pthread_t, const char *)) \
    X(int, pthread_getname_np, (pthread_t, char *, size_t)) \
    X(int, prctl, (int, ...)) \
    X(int, pthread_kill, (pthread_t, int)) \
    X(int, pthread_getcpuclockid, (pthread_t, clockid_t *)) \
    X(int, pthread_cancel, (pthread_t)) \
    X(int, pthread_key_create, (pthread_key_t *, void (*)(void *))) \
    X(int, pthread_key_delete, (pthread_key_t)) \
    X(void *, pthread_getspecific, (pthread_key_t)) \
    X(int, pthread_setspecific, (pthread_key_t, const void *)) \
    X(int, sched_yield, (void)) \
    X(void, __pthread_register_cancel, (__pthread_unwind_buf_t *)) \
    X(void, __pthread_unregister_cancel, (__pthread_unwind_buf_t *)) \
    X(void, __pthread_unwind_next, (__pthread_unwind_buf_t *)) \
    X(int, pthread_setcancelstate, (int, int *))

#define PRELOAD_DECLARE_REAL(ret, name, args) extern ret(*preload_real_##name) args;
PRELOAD_REAL_FUNCTIONS(PRELOAD_DECLARE_REAL)
#undef PRELOAD_DECLARE_REAL
void preload_resolve(void);
#define PREAL(name) (__builtin_expect(preload_real_##name != 0, 1) ? preload_real_##name : (preload_resolve(), preload_real_##name))

// ---- fiber threads (thread.c) ----------------------------------------------------------

#define GTHREAD_MAGIC 0x67726565e7687464ull

typedef struct gthread_specific { uint32_t gen; void *value; } gthread_specific;

/// A thread's signal state (sigmask.c): fiber threads and the main thread.
typedef struct gsig {
    sigset_t mask;             ///< the signals it blocks
    sigset_t pending;          ///< sent to it alone while it blocked them
    green_fiber *fiber;        ///< the fiber that runs it (NULL: gone)
    void *tp;                  ///< its thread pointer (NULL: the hub thread's own)
    volatile unsigned handled; ///< handlers run for it (sigsuspend waits for a change)
    volatile sig_atomic_t suspended; ///< in sigsuspend or pause: any handler ends the wait
    int in_deferred;           ///< running handlers noted for it (signals.c)
    int in_sigwait;            ///< parked in sigwait for `sigwait_set`: a signal of it sent to it alone wakes it
    sigset_t sigwait_set;
} gsig;

/// A pthread that is a fiber. With TLS of its own (thread_block.c) it lives
/// in the block with its glibc descriptor, which is the pthread_t; else the
/// pthread_t points here.
typedef struct gthread {
    uint64_t magic;               ///< GTHREAD_MAGIC (a native pthread_t's first word is its own address)
    void *tp;                     ///< its thread pointer (NULL: shares the hub thread's); x86_64: = glibc descriptor
    green_fiber *fiber;
    void *(*start)(void *);
    void *arg;
    void *retval;
    uint32_t done;                ///< futex word: 1 once the thread has finished
    _Atomic int detached_or_done; ///< DETACHED, FINISHED, JOINING, JOINED (thread.c): who frees
    int id;                       ///< owner id for mutexes (never a kernel tid)
    __pthread_unwind_buf_t *exit_buf; ///< in thread_main: cancellation and pthread_exit unwind to here
    __pthread_unwind_buf_t *cleanup; ///< pthread_cleanup_push chain, when not glibc's (cancel.c)
    green_sched *hub;             ///< the hub running it
    int cancelhandling;           ///< glibc's cancellation bits, when not in its descriptor (cancel.c)
    int cancel_point;             ///< parked in a cancellation point (its hub's thread only)
    _Atomic int cancel_remote;    ///< pthread_cancel from another OS thread: wake it (cancel.c)
    struct _Unwind_Exception unwind; ///< the forced unwind's exception object, when not glibc's
    gthread_specific *specific;   ///< pthread_setspecific values, by key (lazily allocated)
    char name[16];
    struct gthread *live_next, *live_prev; ///< the live fiber threads (gthread_registry_lock)
    gsig sig;                     ///< its signal mask and pending signals
} gthread;

/// The calling OS thread's comm, straight from the kernel: the library's own
/// threads name themselves with these (the interposed prctl names the fiber
/// thread running, not the OS thread under it).
static inline void os_thread_set_name(const char *name) { GREEN_SYSCALL(SYS_prctl, PR_SET_NAME, name, 0, 0, 0); }
static inline int os_thread_name(char name[16]) { return (int)GREEN_SYSCALL(SYS_prctl, PR_GET_NAME, name, 0, 0, 0); }

/// The fiber thread running now, or NULL (the main thread, a native thread, the hub).
gthread *gthread_current(void);
/// Is this pthread_t one of ours?
gthread *gthread_from(pthread_t t);
char *thread_block_descriptor(void *tp); // thread_block.c
/// The pthread_t of a fiber thread.
static inline pthread_t gthread_handle(gthread *t) { return (pthread_t)(t->tp ? (void *)thread_block_descriptor(t->tp) : (void *)t); }
/// The caller's owner id for mutexes and rwlocks: a fiber thread's id, else the kernel tid.
int preload_self_id(void);
/// Run the key destructors of a finishing fiber thread (keys.c).
void gthread_run_key_destructors(gthread *t);
/// Call fn for every live fiber thread, holding the registry's lock.
void gthread_each_live(void (*fn)(gthread *t));

/// Fiber thread ids (gettid) start here: above any kernel tid (pid_max ≤ 2^22),
/// and below bit 30, which futex words use for FUTEX_OWNER_DIED (a PI lock
/// word holds its owner's id under FUTEX_TID_MASK).
#define GTHREAD_FIRST_ID 0x20000000
/// ...and end here (FUTEX_TID_MASK), then start again with ids no live thread has.
#define GTHREAD_LAST_ID 0x3fffffff
/// The live fiber threads, for calls that name one by its id: hold the lock
/// while using what gthread_by_id returns (NULL: no such live thread).
void gthread_registry_lock(void);
void gthread_registry_unlock(void);
gthread *gthread_by_id(pid_t id);
/// Call fn for each live fiber thread that has TLS of its own (takes the lock).
void gthread_for_each_live(void (*fn)(gthread *t, void *arg), void *arg);
/// The kernel tid standing for `tid` in a call that takes one: a live fiber
/// thread's is its hub thread's; -1 (ESRCH) for a fiber-thread id that is
/// gone; any other tid is unchanged.
pid_t preload_kernel_tid(pid_t tid);

/// At start-up, on the thread that becomes the hub: remember it.
void gthread_note_hub_thread(void);

/// Fiber threads alive (futex word; pthread_exit in main waits for zero).
extern uint32_t gthread_live;
/// In a fork child: only the forking thread (fiber) lives on.
void gthread_after_fork_in_child(void);

// ---- TLS and thread descriptor of a fiber thread (thread_block.c) -----------------------

/// Learn glibc's layout (at start-up, on the main thread); GREEN_THREAD_TLS=shared turns it off.
void thread_block_init(void);
/// Once the main hub runs: what fiber threads share with their hub thread.
void thread_block_start(void);
/// Do fiber threads get TLS of their own?
bool thread_block_enabled(void);
/// A zeroed gthread inside a block of TLS and descriptor at `mem`
/// (thread_block_size() bytes aligned to thread_block_align(): the top of
/// the thread's stack, as glibc's), for a fiber thread of the hub whose OS
/// thread's thread pointer is `hub_tp` (its tid and malloc cache are copied
/// from there). `leftover`: what the stack came with
/// (green_fiber_create_reusing): its thread pointer when an ended thread's
/// block is there, whose descriptor is then cleared only where code writes
/// for a fiber thread. NULL: no memory.
gthread *thread_block_create_at(void *mem, void *hub_tp, uintptr_t leftover);
size_t thread_block_size(void);
size_t thread_block_align(void);
/// A ready fiber thread moves to the hub whose OS thread's thread pointer is
/// `hub_tp`: its descriptor's tid and its malloc cache become that hub's.
void thread_block_rehome(gthread *t, void *hub_tp);
/// The kernel tid in the descriptor at thread pointer `tp` (a hub's or a
/// spare's own, worn by another OS thread after a hand-off).
void thread_block_set_tid(void *tp, pid_t tid);
/// On the new fiber thread, first thing: glibc's per-thread start-up.
void thread_block_enter(void);
/// On the finishing fiber thread: C++/Rust thread_local destructors.
void thread_block_run_tls_destructors(void);
/// In a fork child made by a fiber thread: the hub's descriptor is the OS thread's again.
void thread_block_after_fork_in_child(void);
/// In a fork child: forget the dlopen copies due in threads that are gone,
/// and make any pending one now (the hub's dlopen hook).
void thread_block_forget_loaders(void);
/// Once nothing runs on it: free the block's DTV and dynamic TLS, and say
/// in the stack that the rest is there for the next thread (as glibc's
/// stack cache keeps a descriptor).
void thread_block_free(gthread *t);
/// The gthread of a descriptor made here, else NULL.
gthread *thread_block_owner(pthread_t th);
/// The glibc descriptor (pthread_t) of the thread whose thread pointer is
/// `tp`: tp itself on x86_64, right below it on aarch64.
char *thread_block_descriptor(void *tp);
/// The calling thread's robust-mutex list head (glibc's robust_head in its
/// descriptor: a fiber thread's own), NULL when the layout is not known.
void *thread_block_robust_head(void);
/// After the library makes an OS thread (glibc installs its SIGSETXID
/// handler with the first): the library's handler takes SIGSETXID over. It
/// gives the watcher's preemption signals to preempt.c and runs glibc's
/// handler for the rest with the OS thread's own descriptor loaded, so that
/// setuid, setgid and the like end.
void thread_block_wrap_setxid(void);
/// SIGSETXID has the library's handler: preemption signals may be sent.
int thread_block_setxid_wrapped(void);

// ---- cancellation (cancel.c) -----------------------------------------------------------------

/// At the first fiber thread: learn where glibc keeps what cancellation
/// needs, and make the hub ABI's waits cancellation points.
void gcancel_init(void);
/// In thread_main, right after setting up `exit_buf` (the unwind's end, as
/// glibc's start_thread sets its own): from now on pthread_exit and
/// cancellation unwind to it.
void gcancel_thread_begin(gthread *t, __pthread_unwind_buf_t *exit_buf);
/// The start routine returned: no cancellation acts any more.
void gcancel_thread_returned(gthread *t);
/// The unwind reached exit_buf: the thread's value (pthread_exit's, or PTHREAD_CANCELED).
void *gcancel_thread_result(gthread *t);
/// pthread_exit and pthread_cancel of a fiber thread.
__attribute__((noreturn)) void gcancel_exit(gthread *t, void *value);
int gcancel_cancel(gthread *t);
/// A cancellation point that parks, on a fiber: `enter` acts on a pending
/// cancellation, then marks the thread as parked in a cancellation point
/// (returns 0 off a fiber thread: nothing to do); `leave` unmarks it and acts
/// on a cancellation that came meanwhile.
int gcancel_point_enter(void);
void gcancel_point_leave(int entered);
/// Non-zero once pthread_cancel was called for a fiber thread: until then no
/// cancellation can be pending, and parks and sched_yield do not look.
extern int gcancel_requested;
void gcancel_async_point_slow(void);
/// A park that is no cancellation point, or sched_yield: acts only on an
/// asynchronous-type cancellation (a fiber is never interrupted between two calls).
static inline void gcancel_async_point(void) {
    if (__builtin_expect(__atomic_load_n(&gcancel_requested, __ATOMIC_RELAXED), 0)) gcancel_async_point_slow();
}
/// pthread_testcancel for any caller.
void gcancel_testcancel(void);
/// On the hub (its notify callback): wake the threads other OS threads cancelled.
void gcancel_deliver_remote(void);

// ---- signal masks per thread (sigmask.c) ----------------------------------------------------

/// At start-up, once the main hub runs: the main thread's record.
void gsig_init_main(void);
/// The main thread's record (NULL before gsig_init_main), the caller's (NULL
/// off a fiber thread or main: a native thread keeps its kernel mask).
gsig *gsig_main(void);
gsig *gsig_current(void);
/// The calling thread's mask for the length of a ppoll, pselect or
/// epoll_pwait (shim_pthread_hooks.swap_mask), and its count of handlers run.
unsigned gsig_swap_mask(const sigset_t *mask, sigset_t *old, int entering);
unsigned gsig_handlers_run(void);
/// A fiber thread starts with its creator's mask; a finished one counts no more.
void gsig_thread_started(gsig *g, green_fiber *f, void *tp);
void gsig_thread_finished(gsig *g);
/// In a fork child: `self` (the forking thread) alone counts.
void gsig_after_fork_in_child(gsig *self);
/// In the handler wrapper: the thread a delivered signal is for, or NULL when
/// it stays pending (its target, or every thread, blocks it).
gsig *gsig_pick_target(int sig, const siginfo_t *info);
/// A handler noted for `g` finds `sig` blocked by now: pending for g alone (returns 1).
int gsig_pend_if_blocked(gsig *g, int sig);
/// On a hub's thread (its notify callback): load the threads' mask if another hub changed it.
void gsig_reload_if_asked(void);
/// On a hub's thread: load the threads' mask now (a hub that just started:
/// a change made before it was counted asked it nothing).
void gsig_reload_here(void);
/// The OS thread's mask as last loaded, and a counter of loads.
void gsig_applied_mask(sigset_t *out);
/// An OS thread that becomes hub `hub`'s (a spare taking it over): load the
/// threads' mask, and note its generation for that hub.
void gsig_load_for_hub(int hub);
/// A handler on a hub's OS thread notes this when it starts, and calls
/// gsig_handler_return before it returns: sigreturn puts back the mask saved
/// at delivery, which is out of date when the threads' mask or the mask its
/// hub loaded changed meanwhile (while the handler ran, or other fibers ran
/// after a preemption), or when the fiber returns on another hub. Then it
/// gets the threads' mask of now.
typedef struct gsig_handler_entry {
    int generation; ///< of the threads' mask
    int hub;        ///< the hub whose OS thread it runs on
    int loaded;     ///< the generation that hub's OS thread had loaded
} gsig_handler_entry;
gsig_handler_entry gsig_handler_enter(void);
void gsig_handler_return(gsig_handler_entry e, void *context);
/// pthread_kill for a fiber thread or main: returns an error number.
int gsig_kill(gsig *g, int sig);
/// A section that reads or changes signal records without their lock, which
/// is right while one OS thread runs the program's code: 1 if it may
/// (then gsig_unlocked_end when done), 0 if it must take the lock.
int gsig_unlocked_begin(void);
void gsig_unlocked_end(void);
/// After hubs_set_parallel: wait until the sections without the lock ended.
void gsig_unlocked_drain(void);
/// Handlers noted for a thread that was not running (signals.c): the core's
/// resume hook runs them; a thread that ends drops its own.
void preload_signals_start(green_sched *s);
void preload_forget_deferred_signals(gsig *g);
/// The program has a handler of its own for `sig` (not SIG_DFL or SIG_IGN).
int preload_signal_program_handles(int sig);

// ---- preemption (preempt.c) ------------------------------------------------------------

/// Preempt fiber threads that run a whole slice? (GREEN_PREEMPT, decided
/// once; then ready for the watcher in this process). 1: preempt_look.
int preempt_prepare(void);
/// The watcher's look (watcher.c): preempt what ran a whole slice; returns
/// the time until the next look, in ns.
long preempt_look(void);
/// From glibc's SIGSETXID handler (thread_block.c), which the watcher's
/// preemption signals share: 1 if this one is the watcher's (then acted
/// on), 0 if it is glibc's own (a set*id broadcast).
int preempt_on_signal(siginfo_t *info, void *context);
/// In a fork child: no preemption signal is in flight.
void preempt_after_fork_in_child(void);
/// Around an exec (1 before, 0 after it failed): no preemption signal is
/// sent meanwhile, and one already sent to the caller's OS thread is taken
/// before the exec (the new program would end with it: SIG_DFL).
void preempt_hold(int begin);
/// Non-zero while signals.c runs a handler with another thread's TLS loaded:
/// no switch may happen then (in that TLS: the handler's thread's).
extern __thread int preload_preempt_blocked __attribute__((tls_model("initial-exec")));
/// A live fiber thread not blocking `sig` (NULL: none, or the list is changing).
gsig *gthread_first_sig_taker(int sig);
/// A live fiber thread parked in sigwait for `sig`, or NULL (never waits for the registry).
gsig *gthread_sigwaiter(int sig);
/// The hub thread's kernel tid.
pid_t preload_hub_tid(void);
/// Is this pthread_t the main thread (the hub thread's own descriptor)?
int preload_is_main_thread(pthread_t th);


// ---- hubs (hubs.c) -----------------------------------------------------------------------

#define PRELOAD_HUBS_MAX 64
/// At start-up: hub 0 is the main thread's; read GREEN_HUBS.
void hubs_init(green_sched *main_hub);
/// With the program's second thread: start the other hubs (idempotent).
void hubs_start(void);
/// Hubs running now (1 until hubs_start), and how many GREEN_HUBS asks for.
int hubs_count(void);
int hubs_wanted(void);
/// More than one OS thread may run the program's code at once: more than one
/// hub, or a hub handed off (a thread in a handed-off call runs its signal
/// handlers on that call's thread). Set for good, before that can happen.
int hubs_parallel(void);
void hubs_set_parallel(void);
/// Hub 0 (the main thread's); hub i (NULL: not running).
green_sched *hubs_main(void);
green_sched *hubs_sched(int i);
/// The hub a new fiber thread goes to: round-robin (the caller's with one hub).
green_sched *hubs_pick(void);
/// A hub's OS thread: its kernel tid, its own thread pointer, its index (-1: none).
pid_t hubs_tid_of(green_sched *s);
void *hubs_thread_pointer_of(green_sched *s);
int hubs_index_of(green_sched *s);
/// In a fork child: the forking thread's hub is the only one.
void hubs_after_fork_in_child(void);
/// Hub i runs on another OS thread now (handoff.c): its kernel tid.
void hubs_set_tid(int i, pid_t tid);
/// Make fiber thread f ready to run on hub `to` (its tid and malloc cache
/// become that hub's); 0 if f is not a fiber thread.
int hubs_rehome(green_fiber *f, green_sched *to);
/// Hub i's OS thread's name, as ps and top show it.
void hubs_name(int i, char name[16]);
/// What every hub of the library gets (preload.c): kept alive, the
/// library's notify callback, the deferred-signal hook.
void preload_hub_setup(green_sched *s);

// ---- hand-off (handoff.c) ------------------------------------------------------------------

/// Hand off hubs whose OS thread is stuck in a call? (GREEN_HANDOFF, decided
/// once.) 1: handoff_look.
int handoff_prepare(void);
/// The watcher's look: hand off the hubs whose call has lasted since the
/// last look; returns the time until the next look, in ns.
long handoff_look(void);
/// In a fork child: no spares.
void handoff_after_fork_in_child(void);

// ---- the watcher thread (watcher.c) --------------------------------------------------------

/// With the program's second thread (and again in a fork child): start the
/// library's watcher thread, which preemption and hand-off use (idempotent).
void watcher_start(void);

// ---- thread pool (threadpool.c) ----------------------------------------------------------
int preload_run_blocking(void (*fn)(void *), void *arg);
/// In a fork child: the workers are gone; start afresh.
void preload_threadpool_after_fork_in_child(void);

GREEN_HIDDEN_END

#endif
