// signals.c — the program's signal handlers, wrapped. sigaction still
// reports the program's own handler; the wrapper around it does what a
// threaded program gets from the kernel:
//
// - The handler runs on a thread that does not block the signal (sigmask.c
//   picks it), with that thread's TLS: at once if it is the thread running
//   or no thread runs (the hub waits for events); while another thread runs,
//   on the target's own stack when it next runs (below), so that a handler
//   may wait for the thread that was running. A signal no thread takes now
//   stays pending (sigmask.c).
// - A handler installed without SA_RESTART makes the blocking call it
//   interrupted fail with EINTR — the usual way a server's accept loop
//   notices SIGTERM. Here the thread is usually waiting in the hub's epoll,
//   not in the program's call, so after the handler the fiber thread it ran
//   for is woken from its blocking call with EINTR. (Off a fiber, e.g. in a
//   linked Swift program, every fiber's blocking call is.)
#include "preload.h"
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

static struct sigaction programs[NSIG]; // what the program installed, as it sees it
static volatile sig_atomic_t wrapped[NSIG];

// ---- handlers for a thread that is not running -------------------------------------
//
// A signal for a fiber thread other than the one running (or one that came
// while the hub waited) is noted here, and its handler runs when that thread
// next runs, on its own stack (the core's resume hook), so that a handler
// that waits for another thread to act lets it. A thread parked in a
// blocking call of the shim, or in a lock, condition, semaphore, futex or
// join wait (GREEN_PARK_SIGNALS), is woken for it at once: the handler runs
// while it waits, and the wait goes on or fails with EINTR as the kernel's.

#define DEFERRED_MAX 64
enum { SLOT_FREE, SLOT_WRITING, SLOT_FULL };
typedef struct deferred_signal {
    _Atomic int state;
    gsig *target;
    int sig;
    struct sigaction action; // the handler at delivery time
    siginfo_t info;
} deferred_signal;
static deferred_signal deferred[DEFERRED_MAX];
static _Atomic int deferred_full; ///< slots FULL or being emptied (a finished thread skips the table at 0)

/// In the handler wrapper: note `sig` for `target`; 0 if the table is full.
static int defer(gsig *target, int sig, const siginfo_t *info, const struct sigaction *a) {
    for (int i = 0; i < DEFERRED_MAX; i++) {
        deferred_signal *d = &deferred[i];
        if (atomic_load(&d->state) == SLOT_FULL && d->target == target && d->sig == sig && sig < SIGRTMIN)
            return 1; // a standard signal already pending for it: one, as the kernel keeps it
    }
    for (int i = 0; i < DEFERRED_MAX; i++) {
        deferred_signal *d = &deferred[i];
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&d->state, &expected, SLOT_WRITING)) continue;
        d->target = target;
        d->sig = sig;
        d->action = *a;
        d->info = *info;
        atomic_fetch_add(&deferred_full, 1);
        atomic_store(&d->state, SLOT_FULL);
        return 1;
    }
    return 0;
}

void preload_forget_deferred_signals(gsig *g) {
    if (!atomic_load(&deferred_full)) return;
    for (int i = 0; i < DEFERRED_MAX; i++) {
        deferred_signal *d = &deferred[i];
        int full = SLOT_FULL;
        if (d->target == g && atomic_compare_exchange_strong(&d->state, &full, SLOT_WRITING)) {
            d->target = NULL;
            atomic_store(&d->state, SLOT_FREE);
            atomic_fetch_sub(&deferred_full, 1);
        }
    }
}

static void call_handler(const struct sigaction *a, int sig, siginfo_t *info, void *context) {
    if (a->sa_flags & SA_SIGINFO) a->sa_sigaction(sig, info, context);
    else a->sa_handler(sig);
}

/// The core's resume hook: run the handlers noted for the thread now running.
/// Non-zero: the blocking call it was woken from fails with EINTR.
static int run_deferred(green_fiber *f) {
    (void)f;
    gsig *g = gsig_current();
    if (!g) return 1;
    if (g->in_deferred) return 0; // a handler that parked: the rest when it has returned
    g->in_deferred = 1;
    int interrupt = 0;
    for (int i = 0; i < DEFERRED_MAX; i++) {
        deferred_signal *d = &deferred[i];
        int full = SLOT_FULL;
        if (d->target != g || !atomic_compare_exchange_strong(&d->state, &full, SLOT_WRITING)) continue;
        int sig = d->sig;
        struct sigaction action = d->action;
        siginfo_t info = d->info;
        d->target = NULL;
        atomic_store(&d->state, SLOT_FREE);
        atomic_fetch_sub(&deferred_full, 1);
        if (gsig_pend_if_blocked(g, sig)) continue; // blocked since: pending for it until it unblocks it
        ucontext_t context;
        getcontext(&context);
        // Not cancelled inside: it runs inside a park, whose bookkeeping a
        // cancellation's unwind would skip; a pending one acts after the park.
        int cancel_state;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
        call_handler(&action, sig, &info, &context);
        pthread_setcancelstate(cancel_state, NULL);
        g->handled++;
        if (!(action.sa_flags & SA_RESTART)) interrupt = 1;
        i = -1; // a handler may have sent more: look again from the start
    }
    g->in_deferred = 0;
    return interrupt || g->suspended;
}

void preload_signals_start(green_sched *s) { green_sched_set_resume_hook(s, run_deferred); }

/// The handler, counted in the TLS it runs with. A call of its own, made
/// after the thread pointer was swapped: a compiler may reuse within one
/// function the thread pointer it read before (aarch64 does).
static __attribute__((noinline)) void call_on_loaded_tls(const struct sigaction *a, int sig, siginfo_t *info,
                                                          void *context, int swapped) {
    preload_preempt_blocked += swapped; // another thread's TLS is loaded: no switch now (preempt.c)
    green_tls_in_signal_handler++; // (its close: fd_waits.c)
    call_handler(a, sig, info, context);
    green_tls_in_signal_handler--;
    preload_preempt_blocked -= swapped;
}

static void trampoline(int sig, siginfo_t *info, void *context) {
    struct sigaction *a = &programs[sig];
    int interrupts = !(a->sa_flags & SA_RESTART);
    if (a->sa_flags & SA_RESETHAND) wrapped[sig] = 0; // the kernel has put SIG_DFL back
    green_sched *s = green_sched_current();
    gsig *target = NULL;
    green_fiber *running = s ? green_fiber_current() : NULL;
    if (s && preload_fiber_mode && gsig_main()) {
        target = gsig_pick_target(sig, info);
        if (!target) return; // pending for the thread it was sent to, or for the process
        // Another thread is running (it may be the one the handler will wait
        // for): the target runs the handler itself when it next runs. With
        // no thread running (the hub waits for events), here and now.
        // A thread of another hub (`--hubs`) may be running there: always so.
        int elsewhere = target->fiber && green_fiber_sched(target->fiber) != s;
        if ((elsewhere || (running && target != gsig_current())) && target->fiber && defer(target, sig, info, a)) {
            green_fiber_request_resume(target->fiber);
            return;
        }
        if (elsewhere) { // the table is full: it cannot run here, on another thread's TLS
            preload_log("signal %d for a thread of another hub: %d handlers already wait, dropped", sig, DEFERRED_MAX);
            return;
        }
    }
    // The thread it is for is running (or the table is full, or no hub): here.
    gsig_handler_entry entry = gsig_handler_enter();
    void *before = NULL;
    void *tp = target ? (target->tp ? target->tp : green_sched_native_thread_pointer(s)) : NULL;
    if (target) before = green_thread_pointer_swap(tp);
    call_on_loaded_tls(a, sig, info, context, target && tp != before);
    if (target) {
        green_thread_pointer_swap(before);
        target->handled++;
        // A parked target's blocking call ends as the kernel decides. One
        // that runs is in no call (natively a handler between two calls
        // interrupts neither): nothing is noted for its next one.
        if (target->fiber && (target->fiber != running || target->suspended)) { // in ppoll or sigsuspend: any handler ends it
            if (interrupts || target->suspended) green_fiber_interrupt_syscall(target->fiber);
            else green_fiber_restartable_handler_ran(target->fiber); // poll, sleeps: EINTR still
        }
        // The kernel puts back, on return, the mask it saved at delivery: if a
        // thread's mask changed meanwhile, the one the threads want now.
        gsig_handler_return(entry, context);
    } else if (interrupts && s) {
        green_sched_interrupt_syscalls(s);
    }
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;

// ---- the program's handlers ---------------------------------------------------------

int preload_signal_program_handles(int sig) {
    return sig > 0 && sig < NSIG && __atomic_load_n(&wrapped[sig], __ATOMIC_SEQ_CST);
}

GREEN_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    if (!preload_fiber_mode || sig <= 0 || sig >= NSIG) return real_sigaction(sig, act, old);
    green_fair_check(); // a thread that changes handlers in a loop still lets the others run
    struct sigaction before = programs[sig];
    int was_wrapped = wrapped[sig];
    int r;
    if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
        struct sigaction mine = *act;
        mine.sa_sigaction = trampoline;
        mine.sa_flags |= SA_SIGINFO;
        programs[sig] = *act; // before the switch: the handler may run at once
        r = real_sigaction(sig, &mine, old);
        if (r == 0) wrapped[sig] = 1;
        else programs[sig] = before;
    } else {
        r = real_sigaction(sig, act, old);
        if (r == 0 && act) wrapped[sig] = 0;
    }
    if (r == 0 && old && was_wrapped) *old = before;
    return r;
}

/// signal() has BSD semantics in glibc: restart, handler kept, signal blocked meanwhile.
GREEN_EXPORT sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (sig > 0 && sig < NSIG) sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, &old) != 0) return SIG_ERR;
    return old.sa_handler;
}
