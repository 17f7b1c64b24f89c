// cancel.c — pthread_cancel, pthread_testcancel, pthread_exit's unwinding and
// the pthread_cleanup_push chain of fiber threads, as glibc does them.
//
// glibc's deferred cancellation: pthread_cancel sets two bits (CANCELING,
// CANCELED) in the target's descriptor word `cancelhandling`, which also
// holds the thread's cancel state and type; the target acts on them at its
// next cancellation point — pthread_testcancel, or one of the calls that may
// block, which turn on asynchronous cancellation around their system call so
// that pthread_cancel's SIGCANCEL ends the wait. Acting (__do_cancel) sets
// EXITING and starts a forced unwind (_Unwind_ForcedUnwind, libgcc_s) from
// the current frame. Its stop function longjmps into each plain-C
// pthread_cleanup_push buffer as the unwind reaches the frame holding it (the
// handler runs, and __pthread_unwind_next unwinds on from there); the
// personality routines of C++ frames (and of C built with -fexceptions) run
// the destructors and the catch (abi::__forced_unwind&) blocks in between;
// the last buffer is the one start_thread set up (the descriptor's
// cleanup_jmp_buf), which takes the thread to its end: thread_local
// destructors, then key destructors. pthread_exit is the same unwind with
// the thread's value instead of PTHREAD_CANCELED.
//
// A fiber thread does exactly that:
//
// - With a glibc descriptor of its own whose layout is the one checked in
//   gcancel_init ("glibc mode", the default), all of it is glibc's own code.
//   The bits are its descriptor's cancelhandling, so glibc's
//   pthread_setcancelstate/setcanceltype/testcancel (through interposers that
//   forward) and every cancellation point inside libc (the system call
//   wrappers, which the shim calls too) act on them as on any thread's;
//   thread_main gives the descriptor a cleanup_jmp_buf in its own frame as
//   start_thread does, so glibc's __do_cancel and pthread_exit unwind the
//   fiber's frames with glibc's own stop function and land in thread_main.
//   The C cleanup chain stays glibc's too (the interposers below forward).
// - Otherwise (GREEN_THREAD_TLS=shared, or a layout other than expected:
//   fiber threads share the hub thread's descriptor) the bits and the C
//   chain are kept in the gthread record and the same forced unwind is run
//   here, with a stop function doing what glibc's unwind_stop does for that
//   chain ("own mode").
//
// What cannot be glibc's is the waking. A fiber parked in a cancellation
// point — a wait of the hub ABI (read, write, accept, connect, poll, select,
// epoll_wait, the sleeps, sigwait*, sigsuspend, pause, waitpid) or a
// cancellable green futex wait (pthread_cond_*wait, sem_*wait, pthread_join)
// — is in no system call that a signal could end. pthread_cancel wakes such
// a park (green_fiber_cancel; from another OS thread through the hub's
// notify callback), and the thread, running on its own stack again, acts at
// once. Waits that are no cancellation points (mutexes, rwlocks, barriers,
// futexes through syscall()) are not woken. An asynchronous cancel type
// cannot interrupt a fiber, which never runs while another thread does: it
// acts at the thread's next cancellation point, park or sched_yield.
#include "preload.h"
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

// glibc's nptl/descr.h
enum {
    CANCELSTATE_BITMASK = 1 << 0, // PTHREAD_CANCEL_DISABLE
    CANCELTYPE_BITMASK = 1 << 1,  // PTHREAD_CANCEL_ASYNCHRONOUS
    CANCELING_BITMASK = 1 << 2,
    CANCELED_BITMASK = 1 << 3,
    EXITING_BITMASK = 1 << 4,
    TERMINATED_BITMASK = 1 << 5,
};

static inline bool enabled_and_canceled(int v) {
    return (v & (CANCELSTATE_BITMASK | CANCELED_BITMASK | EXITING_BITMASK | TERMINATED_BITMASK)) == CANCELED_BITMASK;
}

static inline bool enabled_and_canceled_and_async(int v) {
    return (v & (CANCELSTATE_BITMASK | CANCELTYPE_BITMASK | CANCELED_BITMASK | EXITING_BITMASK | TERMINATED_BITMASK)) ==
           (CANCELTYPE_BITMASK | CANCELED_BITMASK);
}

/// Offsets in glibc's struct pthread; `glibc` once they are known.
static struct {
    bool glibc;
    size_t cancelhandling, cleanup_jmp_buf, result;
} layout;

/// Are this thread's bits and chain its descriptor's (glibc mode)?
static inline bool in_glibc(const gthread *t) { return layout.glibc && t->tp; }

static inline int *word_of(gthread *t) {
    return in_glibc(t) ? (int *)(void *)(thread_block_descriptor(t->tp) + layout.cancelhandling) : &t->cancelhandling;
}

static inline int load(const int *w) { return __atomic_load_n(w, __ATOMIC_ACQUIRE); }

static __attribute__((noreturn)) void fatal(const char *msg) {
    long unused = GREEN_SYSCALL(SYS_write, 2, msg, strlen(msg));
    (void)unused;
    abort();
}

static void abi_cancellation_point(int after);

/// Offset of a struct pthread field from glibc's libthread_db table
/// `_thread_db_pthread_<field>` ({bits, count, offset}); -1 when absent.
static long field(const char *name, uint32_t bits) {
    const uint32_t *d = dlsym(RTLD_DEFAULT, name);
    return d && d[0] == bits && d[1] == 1 ? (long)d[2] : -1;
}

void gcancel_init(void) {
    static _Atomic int done; // pthread_create on a fiber of any hub
    if (atomic_load_explicit(&done, memory_order_acquire) || atomic_exchange(&done, 1)) return;
    green_hub_abi_set_cancellation_point(abi_cancellation_point);
    if (!thread_block_enabled()) return; // own mode
    // glibc 2.34 and later, x86_64 and aarch64 alike (nptl/descr.h): tid, a
    // pid, robust_prev, robust_head (3 words), cleanup, cleanup_jmp_buf, cancelhandling; and
    // further on result, schedparam, schedpolicy, start_routine. The tables
    // name tid, cancelhandling, schedparam's priority, schedpolicy and
    // start_routine: when they sit where that order puts them, so do the
    // fields in between, which the tables do not name.
    long tid = field("_thread_db_pthread_tid", 32), cancel = field("_thread_db_pthread_cancelhandling", 32);
    long start = field("_thread_db_pthread_start_routine", 64), policy = field("_thread_db_pthread_schedpolicy", 32);
    long priority = field("_thread_db_pthread_schedparam_sched_priority", 32);
    if (tid >= 0 && cancel == tid + 56 && start >= 0 && policy == start - 4 && priority == start - 8) {
        layout.cancelhandling = (size_t)cancel;
        layout.cleanup_jmp_buf = (size_t)cancel - 8;
        layout.result = (size_t)start - 16;
        layout.glibc = true;
        return;
    }
    preload_log("cancellation of fiber threads is the library's own: glibc's descriptor is not laid out as expected");
}

// ---- the library's own unwinding (own mode) --------------------------------------------

/// libgcc_s's unwinder, which C++'s personality routines go with (glibc
/// dlopens it too, for its own cancellation).
static struct {
    _Unwind_Reason_Code (*forced_unwind)(struct _Unwind_Exception *, _Unwind_Stop_Fn, void *);
    _Unwind_Word (*get_cfa)(struct _Unwind_Context *);
} unwinder;

static void load_unwinder(void) {
    if (__atomic_load_n(&unwinder.get_cfa, __ATOMIC_ACQUIRE)) return;
    void *lib = dlopen("libgcc_s.so.1", RTLD_NOW);
    void *forced = lib ? dlsym(lib, "_Unwind_ForcedUnwind") : NULL, *cfa = lib ? dlsym(lib, "_Unwind_GetCFA") : NULL;
    if (!forced || !cfa) fatal("libgcc_s.so.1 must be installed for pthread_cancel and pthread_exit to work\n");
    unwinder.forced_unwind = (_Unwind_Reason_Code(*)(struct _Unwind_Exception *, _Unwind_Stop_Fn, void *))forced;
    __atomic_store_n(&unwinder.get_cfa, (_Unwind_Word(*)(struct _Unwind_Context *))cfa, __ATOMIC_RELEASE);
}

/// A catch (...) that does not rethrow ends the unwind: glibc gives up too.
static void not_rethrown(_Unwind_Reason_Code reason, struct _Unwind_Exception *exc) {
    (void)reason;
    (void)exc;
    fatal("FATAL: exception not rethrown\n");
}

/// glibc's unwind_stop for the library's chain. Called for each frame before
/// its personality routine, with the CFA of the frame it called, i.e. the
/// frame's own stack pointer at that call. `target` (the innermost
/// pthread_cleanup_push buffer, else thread_main's) lies in the frame that
/// holds it, above that stack pointer; so the first frame whose reported CFA
/// is above the buffer is that frame's caller: every frame inside has been
/// given to its personality routine, and the buffer's own frame is plain C
/// (C++ and -fexceptions C push their handlers without buffers), so jumping
/// into the buffer now runs its handler in the order glibc does. glibc
/// compares with the stack pointer saved in the buffer instead: the same
/// frame, without knowing how the stack pointer is mangled. Past the last
/// frame with unwind information, the jump is made anyway, as glibc does.
static _Unwind_Reason_Code own_stop(int version, _Unwind_Action actions, _Unwind_Exception_Class exception_class,
                                    struct _Unwind_Exception *exc, struct _Unwind_Context *context, void *target) {
    (void)version;
    (void)exception_class;
    (void)exc;
    __pthread_unwind_buf_t *buf = target;
    if ((actions & _UA_END_OF_STACK) || unwinder.get_cfa(context) > (uintptr_t)buf)
        longjmp((struct __jmp_buf_tag *)(void *)buf->__cancel_jmp_buf, 1);
    return _URC_NO_REASON;
}

static __attribute__((noreturn)) void own_unwind(gthread *t, __pthread_unwind_buf_t *target) {
    load_unwinder();
    struct _Unwind_Exception *exc = &t->unwind;
    exc->exception_class = 0; // not catchable as any type: only catch (...) and abi::__forced_unwind see it
    exc->exception_cleanup = not_rethrown;
    unwinder.forced_unwind(exc, own_stop, target);
    abort(); // the stop function always jumps
}

/// __do_cancel: no more cancellations, and unwind to the innermost handler.
static __attribute__((noreturn)) void own_do_cancel(gthread *t, void *value) {
    t->retval = value;
    __atomic_fetch_or(&t->cancelhandling, EXITING_BITMASK, __ATOMIC_ACQ_REL);
    own_unwind(t, t->cleanup ? t->cleanup : t->exit_buf);
}

// ---- the life of a fiber thread -------------------------------------------------------------

void gcancel_thread_begin(gthread *t, __pthread_unwind_buf_t *exit_buf) {
    // No previous handler (glibc's priv.data.prev and .cleanup), written
    // after the setjmp as start_thread does: setjmp may use that space.
    memset(exit_buf->__pad, 0, sizeof exit_buf->__pad);
    t->exit_buf = exit_buf;
    if (in_glibc(t)) *(void **)(void *)(thread_block_descriptor(t->tp) + layout.cleanup_jmp_buf) = exit_buf;
}

void gcancel_thread_returned(gthread *t) {
    // Its destructors are no cancellation points any more (glibc marks a
    // thread EXITING a little later, once they have run).
    __atomic_fetch_or(word_of(t), EXITING_BITMASK, __ATOMIC_ACQ_REL);
}

void *gcancel_thread_result(gthread *t) {
    return in_glibc(t) ? *(void **)(void *)(thread_block_descriptor(t->tp) + layout.result) : t->retval;
}

void gcancel_exit(gthread *t, void *value) {
    if (in_glibc(t)) PREAL(pthread_exit)(value); // glibc's: result = value, then __do_cancel
    own_do_cancel(t, value);
}

/// The thread is cancelled and its cancellation enabled: unwind.
static void act(gthread *t) {
    if (in_glibc(t)) REAL(pthread_testcancel)(); // result = PTHREAD_CANCELED, __do_cancel
    else if (enabled_and_canceled(load(&t->cancelhandling))) own_do_cancel(t, PTHREAD_CANCELED);
}

int gcancel_requested;

static inline void test(gthread *t) {
    if (__builtin_expect(enabled_and_canceled(load(word_of(t))), 0)) act(t);
}

/// At a park: no thread was ever cancelled, the common case, costs one load.
static inline void test_if_requested(gthread *t) {
    if (__builtin_expect(__atomic_load_n(&gcancel_requested, __ATOMIC_RELAXED), 0)) test(t);
}

// ---- cancellation points ---------------------------------------------------------------------

// The mark is set even before any pthread_cancel: the first one may be for
// a thread parked already. A canceller sets gcancel_requested before the
// bits, and a thread it wakes looks after the wake: it sees both.

static inline void point_enter(gthread *t) {
    test_if_requested(t);
    t->cancel_point = 1;
}

static inline void point_leave(gthread *t) {
    t->cancel_point = 0;
    test_if_requested(t);
}

int gcancel_point_enter(void) {
    gthread *t = gthread_current();
    if (!t) return 0;
    point_enter(t);
    return 1;
}

void gcancel_point_leave(int entered) {
    if (entered) point_leave(gthread_current());
}

/// The hub ABI's waits (the shim's blocking calls) before parking (0) and after (1).
static void abi_cancellation_point(int after) {
    gthread *t = gthread_current();
    if (!t) return;
    if (after) point_leave(t);
    else point_enter(t);
}

void gcancel_async_point_slow(void) {
    gthread *t = gthread_current();
    if (t && __builtin_expect(enabled_and_canceled_and_async(load(word_of(t))), 0)) act(t);
}

void gcancel_testcancel(void) {
    gthread *t = gthread_current();
    if (t) test(t);
    else REAL(pthread_testcancel)();
}

// ---- pthread_cancel ---------------------------------------------------------------------------

/// On t's hub thread: wake t if it is parked in a cancellation point (an
/// interruptible park: green_fiber_cancel ends it with GREEN_WAKE_CANCELLED).
static void wake_if_parked(gthread *t) {
    if (t->cancel_point && green_fiber_state_of(t->fiber) == GREEN_FIBER_PARKED) green_fiber_cancel(t->fiber);
}

static _Atomic int remote_pending; ///< threads whose cancel_remote is set

/// Only on the thread's own hub (with `--hubs`, each hub delivers its own).
static void deliver(gthread *t) {
    if (!atomic_load_explicit(&t->cancel_remote, memory_order_relaxed)) return;
    if (t->hub != green_sched_current()) { // it moved to another hub since: that hub's to deliver
        green_sched_notify(t->hub);
        return;
    }
    if (!atomic_exchange(&t->cancel_remote, 0)) return;
    atomic_fetch_sub(&remote_pending, 1);
    wake_if_parked(t);
}

void gcancel_deliver_remote(void) {
    if (atomic_load_explicit(&remote_pending, memory_order_relaxed) > 0)
        gthread_each_live(deliver); // a thread in the list is alive: its record is not freed meanwhile
}

int gcancel_cancel(gthread *t) {
    // Finished: its outcome is decided (glibc: a thread whose tid is 0).
    if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) return 0;
    if (!in_glibc(t)) load_unwinder(); // as glibc: fail here, not when the thread acts
    __atomic_store_n(&gcancel_requested, 1, __ATOMIC_SEQ_CST);
    int *w = word_of(t);
    int old = load(w), new;
    do {
        new = old | CANCELING_BITMASK | CANCELED_BITMASK;
        if (new == old) return 0; // cancelled before
    } while (!__atomic_compare_exchange_n(w, &old, new, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    if (!enabled_and_canceled(new)) return 0; // disabled: its first cancellation point once enabled acts
    if (t == gthread_current()) {
        if (new & CANCELTYPE_BITMASK) act(t); // glibc: an asynchronous self-cancel acts at once
        return 0;
    }
    // The bits are set before the target's cancellation point looks: it
    // either sees them on entry or is parked there when the wake comes (the
    // hub runs the remote wake only while the target is not running).
    if (green_sched_current() == t->hub) {
        wake_if_parked(t);
    } else {
        if (!atomic_exchange(&t->cancel_remote, 1)) atomic_fetch_add(&remote_pending, 1);
        green_sched_notify(t->hub);
    }
    return 0;
}

GREEN_EXPORT int pthread_cancel(pthread_t th) {
    gthread *t = gthread_from(th);
    if (t) return gcancel_cancel(t);
    if (preload_fiber_mode && preload_is_main_thread(th)) {
        // The main thread shares its descriptor with the hub, whose own
        // waits are glibc's cancellation points too: not cancellable.
        preload_log("pthread_cancel of the main thread is not supported with fiber threads");
        return ENOTSUP;
    }
    return PREAL(pthread_cancel)(th);
}

GREEN_EXPORT void pthread_testcancel(void) { gcancel_testcancel(); }

GREEN_EXPORT int pthread_setcancelstate(int state, int *oldstate) {
    gthread *t = gthread_current();
    if (!t || in_glibc(t)) return PREAL(pthread_setcancelstate)(state, oldstate);
    if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE) return EINVAL;
    int old = load(&t->cancelhandling), new;
    do new = state == PTHREAD_CANCEL_DISABLE ? old | CANCELSTATE_BITMASK : old & ~CANCELSTATE_BITMASK;
    while (new != old && !__atomic_compare_exchange_n(&t->cancelhandling, &old, new, 1, __ATOMIC_ACQ_REL,
                                                      __ATOMIC_ACQUIRE));
    if (oldstate) *oldstate = (old & CANCELSTATE_BITMASK) ? PTHREAD_CANCEL_DISABLE : PTHREAD_CANCEL_ENABLE;
    return 0; // enabling does not act: the next cancellation point does
}

GREEN_EXPORT int pthread_setcanceltype(int type, int *oldtype) {
    gthread *t = gthread_current();
    if (!t || in_glibc(t)) return REAL(pthread_setcanceltype)(type, oldtype);
    if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS) return EINVAL;
    int old = load(&t->cancelhandling), new;
    do new = type == PTHREAD_CANCEL_ASYNCHRONOUS ? old | CANCELTYPE_BITMASK : old & ~CANCELTYPE_BITMASK;
    while (new != old && !__atomic_compare_exchange_n(&t->cancelhandling, &old, new, 1, __ATOMIC_ACQ_REL,
                                                      __ATOMIC_ACQUIRE));
    if (oldtype) *oldtype = (old & CANCELTYPE_BITMASK) ? PTHREAD_CANCEL_ASYNCHRONOUS : PTHREAD_CANCEL_DEFERRED;
    if (enabled_and_canceled_and_async(new)) own_do_cancel(t, PTHREAD_CANCELED); // as glibc
    return 0;
}

// ---- pthread_cleanup_push/pop of plain C ----------------------------------------------------
//
// The macros register a setjmp buffer per handler: glibc chains them in the
// calling thread's descriptor. A fiber thread in glibc mode has its own
// descriptor, so the chain is glibc's; in own mode the fiber threads share
// the hub thread's descriptor, so each keeps its chain in its record.

GREEN_EXPORT void __pthread_register_cancel(__pthread_unwind_buf_t *buf) {
    gthread *t = gthread_current();
    if (!t || in_glibc(t)) {
        PREAL(__pthread_register_cancel)(buf);
        return;
    }
    buf->__pad[0] = t->cleanup;
    t->cleanup = buf;
}

GREEN_EXPORT void __pthread_unregister_cancel(__pthread_unwind_buf_t *buf) {
    gthread *t = gthread_current();
    if (!t || in_glibc(t)) {
        PREAL(__pthread_unregister_cancel)(buf);
        return;
    }
    t->cleanup = buf->__pad[0];
}

/// After a handler ran in an unwind: on to the next (glibc starts a new
/// forced unwind towards it, from here).
GREEN_EXPORT void __pthread_unwind_next(__pthread_unwind_buf_t *buf) {
    gthread *t = gthread_current();
    if (!t || in_glibc(t)) {
        PREAL(__pthread_unwind_next)(buf);
        __builtin_unreachable();
    }
    __pthread_unwind_buf_t *next = buf->__pad[0];
    t->cleanup = next;
    own_unwind(t, next ? next : t->exit_buf);
}
