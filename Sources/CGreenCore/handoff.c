// handoff.c — a hub goes on without an OS thread that is stuck in a system
// call (`green run`; the contract is in green_core.h).
//
// A hub is its scheduler, its hub fiber and its own TLS; the OS thread that
// runs it can change. While a fiber thread is in a marked call, the hub's
// call word says so (sequence number << 2 | CALL_IN). The owner's watcher
// turns CALL_IN into CALL_LOST; a spare OS thread turns CALL_LOST into
// CALL_TAKEN, saves its own context in the call's record and switches to the
// hub fiber, loading the hub's TLS. When the call returns, its thread either
// finds CALL_IN (the common case: one CAS) or CALL_LOST (no spare came yet:
// it takes the hub back), or it waits for the spare's context to be saved
// and switches to it, taking the spare's stack and TLS. The two OS threads
// have traded places; the fiber, no hub's now, is given to one
// (green_fiber_adopt) by the code that the spare context runs next.
//
// The returning thread reads the spare's stack, saved by the switch before
// it stores the stack pointer the returning thread waits for (with acquire):
// x86's store order makes that enough, and aarch64's switch stores the
// stack pointer with release (stlr).
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include "internal.h"

enum { CALL_NONE = 0, CALL_IN = 1, CALL_LOST = 2, CALL_TAKEN = 3 };
#define CALL_STATE(w) ((int)((w) & 3))
#define CALL_SEQ(w) ((w) >> 2)

int green_sched_allow_handoff(green_sched *s) {
    __atomic_store_n(&s->call.allowed, 1, __ATOMIC_RELAXED); // from the watcher: the hub reads it relaxed
    return 0;
}

green_sched *green_call_enter(green_call *c) {
    green_fiber *f = green_tls_parkable;
    if (!f || !f->tp) return NULL; // not a fiber, or one that shares the hub's TLS (main)
    green_sched *s = green_tls_sched;
    // Only the fiber running now: a signal handler that runs with a parked
    // thread's TLS loaded finds that thread here, not running. A timeout
    // scope or a pinned wait holds a watcher of this hub's loop.
    if (!__atomic_load_n(&s->call.allowed, __ATOMIC_RELAXED) || s->run.current != f || f->timeouts || f->pins) return NULL;
    // From here this OS thread may stop being the hub's: to the shim (and to
    // a signal handler that runs during the call, which then marks nothing)
    // it is no fiber's.
    green_tls_parkable = NULL;
    green_tls_sched = NULL;
    c->sched = s;
    c->fiber = f;
    atomic_store_explicit(&c->runner_sp, NULL, memory_order_relaxed);
    s->call.current = c;
    uint64_t w = ((CALL_SEQ(atomic_load_explicit(&s->call.word, memory_order_relaxed)) + 1) << 2) | CALL_IN;
    c->word = w;
    atomic_store_explicit(&s->call.word, w, memory_order_release);
    return s;
}

void green_call_leave(green_call *c) {
    green_sched *s = c->sched;
    green_fiber *f = c->fiber;
    uint64_t w = c->word;
    uint64_t done = w & ~(uint64_t)3;
    if (__builtin_expect(atomic_compare_exchange_strong_explicit(&s->call.word, &w, done, memory_order_acq_rel,
                                                                 memory_order_acquire), 1)) {
        green_tls_sched = s;
        green_tls_parkable = f;
        return;
    }
    uint64_t lost = done | CALL_LOST;
    if (w == lost && atomic_compare_exchange_strong(&s->call.word, &lost, done)) { // retaken, but no spare has it yet
        green_tls_sched = s;
        green_tls_parkable = f;
        return;
    }
    // A spare runs the hub now: take its place once its context is saved.
    int saved_errno = errno;
    void *sp;
    while (!(sp = atomic_load_explicit(&c->runner_sp, memory_order_acquire))) sched_yield();
    void *tp = c->runner_tp;
    green_tp_write(tp); // from here until the switch, no TLS is touched
    green_ctx_switch(&f->sp, sp, NULL); // into green_sched_run_claimed's switch, which takes nothing
    // A hub runs f again (green_fiber_adopt): its switch loaded f's TLS.
    green_after_switch(f->sched);
    errno = saved_errno;
}

uint64_t green_sched_call_in_progress(green_sched *s) {
    uint64_t w = atomic_load_explicit(&s->call.word, memory_order_acquire);
    return CALL_STATE(w) == CALL_IN ? CALL_SEQ(w) : 0;
}

int green_sched_retake(green_sched *s, uint64_t seq) {
    uint64_t in = (seq << 2) | CALL_IN;
    return atomic_compare_exchange_strong(&s->call.word, &in, (seq << 2) | CALL_LOST);
}

green_call *green_sched_claim(green_sched *s) {
    uint64_t w = atomic_load_explicit(&s->call.word, memory_order_acquire);
    if (CALL_STATE(w) != CALL_LOST) return NULL;
    if (!atomic_compare_exchange_strong(&s->call.word, &w, (w & ~(uint64_t)3) | CALL_TAKEN)) return NULL;
    return s->call.current; // its caller cannot leave before this context is saved
}

green_fiber *green_sched_run_claimed(green_sched *s, green_call *c, void *runner_tp) {
    green_fiber *f = c->fiber;
    // f stays on the thread in the call: no longer one of this hub's fibers.
    green_census_remove(s, f);
    c->runner_tp = runner_tp;
    green_overflow_install_for_thread(); // this OS thread's alternate signal stack
    // The hub fiber runs next, here, with the hub's TLS.
    __atomic_store_n(&s->run.current, s->run.hub, __ATOMIC_RELAXED);
    green_tp_write(s->tp.native);
    s->tp.now = s->tp.native;
    green_note_loaded_tls(s, NULL);
    errno = s->run.hub->saved_errno; // the hub fiber's, as a switch into it loads (it does not look itself)
    // New calls may be marked (the one in progress is no longer the hub's).
    atomic_store_explicit(&s->call.word, c->word & ~(uint64_t)3, memory_order_release);
    green_ctx_switch((void **)&c->runner_sp, s->run.hub->sp, s->run.hub); // the hub fiber's switch_to learns it is back
    // Resumed by f's thread, its call over: that thread runs this context now.
    return f;
}

void green_fiber_adopt(green_sched *to, green_fiber *f) {
    f->sched = to;
    f->state = GREEN_FIBER_READY;
    green_adopt_later(to, f);
}
