// scheduler.c — the hub's mechanics: ready queue, switching, park/wake,
// fairness, fiber lifecycle, remote wakes, fork and the hub fiber's loop over
// libev (timers.c, fd_waits.c, wait_queues.c, snapshot.c and hub_abi.c hold
// the rest).
//
// A parking fiber switches straight to the next ready fiber; only every
// SWITCH_BUDGET switches, or when nothing is ready, does it switch to the hub
// fiber, which polls libev (without blocking if fibers are ready) and then
// resumes dispatching. Nothing here allocates or makes a syscall on the
// switch path.
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"

// Under ThreadSanitizer, tell it about every stack switch, so it keeps one
// shadow call stack per fiber (and orders fibers of a hub, which run one at
// a time).
#if defined(__SANITIZE_THREAD__)
#define GREEN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GREEN_TSAN 1
#endif
#endif
#ifdef GREEN_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#define TSAN_FIBER_CREATE(f) ((f)->tsan_fiber = __tsan_create_fiber(0))
#define TSAN_FIBER_CURRENT(f) ((f)->tsan_fiber = __tsan_get_current_fiber())
#define TSAN_FIBER_DESTROY(f) __tsan_destroy_fiber((f)->tsan_fiber)
#define TSAN_SWITCH(to) __tsan_switch_to_fiber((to)->tsan_fiber, 0)
#else
#define TSAN_FIBER_CREATE(f) ((void)0)
#define TSAN_FIBER_CURRENT(f) ((void)0)
#define TSAN_FIBER_DESTROY(f) ((void)0)
#define TSAN_SWITCH(to) ((void)0)
#endif

#define SWITCH_BUDGET 1024
#define HUB_STACK_SIZE (256u * 1024u)
#define HOT_FREE_STACKS 256     // free stacks kept resident per size class
#define TRIM_PER_IDLE 256       // stacks given back to the kernel per idle pass
#define RECORDS_KEPT 1024       // finished fibers' heap records kept for reuse
#define IDLE_FIBERS_KEPT 16     // finished fibers kept with their stacks for the next spawns

__thread green_sched *green_tls_sched __attribute__((tls_model("initial-exec")));
__thread green_fiber *green_tls_parkable __attribute__((tls_model("initial-exec")));
__thread unsigned green_tls_fair_calls __attribute__((tls_model("initial-exec")));
__thread int green_tls_making_internal_fds __attribute__((tls_model("initial-exec")));
__thread int green_tls_in_signal_handler __attribute__((tls_model("initial-exec")));

int64_t green_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// ---- ready queue -----------------------------------------------------------

static inline void push_ready(green_sched *s, green_fiber *f) {
    f->run_next = NULL;
    if (s->run.ready_tail) s->run.ready_tail->run_next = f;
    else s->run.ready_head = f;
    s->run.ready_tail = f;
}

static inline green_fiber *pop_ready(green_sched *s) {
    green_fiber *f = s->run.ready_head;
    if (f) {
        s->run.ready_head = f->run_next;
        if (!s->run.ready_head) s->run.ready_tail = NULL;
    }
    return f;
}

// ---- switching -------------------------------------------------------------

// Heap records are 64-byte aligned, so that what a park, a wake and a
// switch touch is in their first two lines (internal.h). They come from
// plain malloc, aligned by hand, with the block's address kept past the
// record's end: glibc's aligned_alloc (before 2.38) takes no small block
// from the thread's cache and leaves fragments behind, which 100,000
// fibers alive would pay on every spawn.
#define RECORD_SIZE ((sizeof(green_fiber) + 63) & ~(size_t)63)
_Static_assert(RECORD_SIZE - sizeof(green_fiber) >= sizeof(void *), "room for the block's address past the record");

static void **record_block_slot(green_fiber *f) { return (void **)((char *)f + RECORD_SIZE) - 1; }

static green_fiber *record_alloc(void) {
    char *block = malloc(RECORD_SIZE + 64 - _Alignof(max_align_t)); // room to move up to the next 64
    if (!block) return NULL;
    green_fiber *f = (green_fiber *)(((uintptr_t)block + 63) & ~(uintptr_t)63);
    *record_block_slot(f) = block;
    return f;
}

static void record_free(green_fiber *f) { free(*record_block_slot(f)); }

/// A fiber record for green_fiber_spawn: a finished one's, else new heap memory.
static green_fiber *record_get(green_sched *s) {
    green_fiber *f = s->records.free;
    if (f) {
        s->records.free = f->run_next;
        s->records.count--;
        return f;
    }
    return record_alloc();
}

/// Only RECORDS_KEPT are kept: keeping every record (tried) cut 100,000
/// fibers alive from 1,990 to 1,565 instructions each but ran 40% slower.
/// A free list that long is a chain of dependent cache misses (each pop
/// reads the next record's address from the last one), where malloc, once
/// the records' frees have merged the heap's free chunks, hands the next
/// round's records and Swift objects out in address order.
static void record_put(green_sched *s, green_fiber *f) {
    if (s->records.count >= RECORDS_KEPT) {
        record_free(f);
        return;
    }
    f->run_next = s->records.free;
    s->records.free = f;
    s->records.count++;
}

static void records_trim(green_sched *s, unsigned keep, unsigned budget) {
    while (s->records.count > keep && budget--) {
        green_fiber *f = s->records.free;
        s->records.free = f->run_next;
        s->records.count--;
        record_free(f);
    }
}

// Not inlined into the switch: its frame would make every switch save
// registers that only this rare path uses.
__attribute__((noinline, cold)) static void release_dead(green_sched *s) {
    green_fiber *d = s->run.dead;
    s->run.dead = NULL;
    TSAN_FIBER_DESTROY(d);
    if (d->keeper) { // its owner gives the stack back (green_fiber_release_stack)
        d->keeper(d);
        return;
    }
    green_stack st = d->stack;
    bool apart = d->flags & FIBER_RECORD_APART; // else d is on that stack, maybe unmapped next
    green_stack_release(&s->stacks, &st);
    if (apart) record_put(s, d);
}

static void fiber_main(void *arg);

/// A fiber made by green_fiber_spawn runs for the first time: it takes the
/// stack promised to it now, the one most recently freed (most likely still
/// in the cache), not one picked when it was made. Many fibers made before
/// any runs then share a few hot stacks between them, instead of each
/// touching a page of its own twice.
__attribute__((noinline)) static void give_stack(green_sched *s, green_fiber *f) {
    green_stack_take_promised(&s->stacks, f->stack.cls, &f->stack);
    f->stack.leftover = 0; // nothing left at its top for the next owner
    f->top = f->stack.hi;
    f->sp = green_ctx_make(f->top, fiber_main, f);
}

void green_fiber_keep_stack(green_fiber *f, void (*left)(green_fiber *f)) { f->keeper = left; }

void green_fiber_release_stack(green_fiber *f) {
    green_stack st = f->stack; // copied: f lives on that stack
    green_sched *s = green_tls_sched;
    green_stack_release(s ? &s->stacks : NULL, &st); // another thread's pool gets it back through its inbox
}

void green_fiber_discard(green_fiber *f) {
    TSAN_FIBER_DESTROY(f);
    green_fiber_release_stack(f);
}

static inline void after_switch(green_sched *s) {
    if (s->run.dead) release_dead(s);
}

void green_after_switch(green_sched *s) { after_switch(s); }

void (*_Atomic green_next_switch_hook)(void);
void (*_Atomic green_notify_hook)(void);

/// errno's place from the thread pointer: the same in every thread (libc's
/// static TLS), so a switch reaches it without calling __errno_location.
/// The thread pointer is read anew (green_tp_read_fresh): a fiber that
/// moved to another hub comes back from its switch on another one.
static long errno_offset;
static inline int *errno_here(void) {
    return (int *)((char *)green_tp_read_fresh() + __atomic_load_n(&errno_offset, __ATOMIC_RELAXED));
}

/// After a write of the thread pointer: the core's per-thread state in the
/// TLS now loaded. Never inlined: a compiler may read the thread pointer
/// once per function (aarch64 keeps TPIDR_EL0's value in a register and
/// reuses it; x86_64's %fs-relative stores happen to use the current base),
/// so TLS is touched only in a call made after the write.
__attribute__((noinline)) void green_note_loaded_tls(green_sched *s, green_fiber *parkable) {
    green_tls_sched = s;
    green_tls_parkable = parkable;
    green_tls_fair_calls = 0; // a switch: a new streak (green_fair_check)
}

/// Back on `from` after a switch while a finished fiber's stack waits to be
/// given back. Returns `from`, so that its caller keeps nothing across.
__attribute__((noinline, cold)) static green_fiber *release_dead_then_resume(green_fiber *from) {
    int saved_errno = *errno_here(); // the switch into `from` loaded it; a munmap's failure must not change it
    release_dead(from->sched);
    *errno_here() = saved_errno;
    // Hide that this returns its argument, or the caller keeps `from` in a
    // callee-saved register across the call after all.
    __asm__("" : "+r"(from));
    return from;
}

/// Every switch, in full: a switch hook to run, another thread pointer to
/// load (a `green run` fiber thread), a first run that takes its stack, or
/// Swift's exclusivity state through the runtime's calls. Never inlined:
/// its calls would make the common switch save registers for them.
__attribute__((noinline)) static green_fiber *switch_in_full(green_sched *s, green_fiber *from, green_fiber *to) {
    if (green_next_switch_hook != NULL) {
        void (*hook)(void) = atomic_load(&green_next_switch_hook);
        if (hook) hook(); // before another fiber thread runs; it clears itself (see green_hub_abi.h)
    }
    __atomic_store_n(&s->run.current, to, __ATOMIC_RELAXED); // a plain store; the monitor thread reads it
    __atomic_store_n(&s->census.switches, s->census.switches + 1, __ATOMIC_RELAXED); // a plain store; the monitor reads it
    from->saved_errno = *errno_here();
    // Swift's access set, in the TLS loaded now: fibers that change the
    // thread pointer are `green run`'s, which turns this bookkeeping off.
    green_exclusivity_switch(from, to);
    // A fiber standing for a program's thread has TLS of its own: load its
    // thread pointer before the TLS stores below, which are then its own.
    void *tp = to->tp ? to->tp : s->tp.native;
    green_fiber *parkable = to != s->run.hub ? to : NULL;
    if (parkable) to->state = GREEN_FIBER_RUNNING;
    if (tp != s->tp.now) {
        green_tp_write(tp);
        s->tp.now = tp;
        green_note_loaded_tls(s, parkable);
    } else {
        green_tls_parkable = parkable;
    }
    *errno_here() = to->saved_errno; // in the TLS loaded now: `to`'s
    if (to->sp == NULL) give_stack(s, to); // its first run
    TSAN_SWITCH(to);
    // Every switch into a fiber passes that fiber: `from` comes back here.
    from = green_ctx_switch(&from->sp, to->sp, to);
    if (from->sched->run.dead) return release_dead_then_resume(from);
    return from;
}

/// Run `to` now. Returns, once the calling fiber runs again (maybe on
/// another hub: green_sched_share moves ready fibers), that fiber: the
/// switch hands it over. Inlined into every park and yield; its common case
/// (two fibers of one thread pointer, both run before, no hook) calls
/// nothing but the switch and keeps nothing across it, so that the frames
/// around it save no registers of their own (the switch saves them once).
__attribute__((always_inline)) static inline green_fiber *switch_to(green_sched *s, green_fiber *to) {
    green_fiber *from = s->run.current;
    if (from == to) return from;
    // A switch: a new streak (green_fair_check). Zeroed in the TLS loaded
    // now, before anything else changes: a fiber thread with TLS of its own
    // keeps 0 there while it is switched out (its signal handlers may run
    // on it), and the TLS switched to, if another, is zeroed as it loads
    // (green_note_loaded_tls).
    green_tls_fair_calls = 0;
    void *tp = to->tp ? to->tp : s->tp.native;
    int exclusivity = green_exclusivity_mode;
    if (__builtin_expect(green_next_switch_hook != NULL || tp != s->tp.now || to->sp == NULL ||
                             (exclusivity != GREEN_EXCLUSIVITY_SLOT && exclusivity != GREEN_EXCLUSIVITY_NONE), 0))
        return switch_in_full(s, from, to);
    __atomic_store_n(&s->run.current, to, __ATOMIC_RELAXED); // a plain store; the monitor thread reads it
    __atomic_store_n(&s->census.switches, s->census.switches + 1, __ATOMIC_RELAXED); // a plain store; the monitor reads it
    // One thread pointer, so one errno for both: the switch swaps its value
    // (and the fiber resumed finds its own without a look of its own).
    int *err = errno_here();
    from->saved_errno = *err;
    *err = to->saved_errno;
    if (exclusivity == GREEN_EXCLUSIVITY_SLOT) { // Swift's access set: `to`'s own (exclusivity.c)
        void **slot = green_exclusivity_slot;
        from->exclusivity[0] = (uintptr_t)*slot;
        *slot = (void *)to->exclusivity[0];
    }
    green_fiber *parkable = to != s->run.hub ? to : NULL;
    if (parkable) to->state = GREEN_FIBER_RUNNING;
    green_tls_parkable = parkable;
    TSAN_SWITCH(to);
    from = green_ctx_switch(&from->sp, to->sp, to);
    if (__builtin_expect(from->sched->run.dead != NULL, 0)) return release_dead_then_resume(from);
    return from;
}

/// Wake hub s's loop (ev_async_send, from any thread or a signal handler).
/// libev writes to its eventfd with write(), which `green run`'s shim
/// interposes: the calling fiber does not count as one for it meanwhile,
/// so the write goes straight to the kernel and never takes a fair turn (a
/// switch in the middle of scheduling, under a futex bucket's lock, or in a
/// signal handler).
static void notify_hub(green_sched *s) {
    green_fiber *parkable = green_tls_parkable;
    green_tls_parkable = NULL;
    // What the caller posted becomes visible before libev's `sent` flag:
    // ev_async_send sets it with a plain store before any fence of its own,
    // which a weakly ordered CPU (aarch64) may show first (see notify_cb).
    atomic_thread_fence(memory_order_release);
    ev_async_send(s->loop, &s->inbox.notify);
    green_tls_parkable = parkable;
}

// ---- sharing ready fibers between hubs (green_sched_share) -----------------------
//
// A hub that has nothing to run says so (`hungry`) before it waits for
// events; a hub of the group that has more than one fiber ready gives one
// away at its next scheduling point: a relaxed load on every switch, and the
// rest only when some hub is hungry. Only a ready fiber moves (never a
// running or parked one), and only one its owner lets move and that holds no
// watcher of its hub's loop (`pins`, a timeout scope).

#define SHARE_MAX 64
static green_sched *_Atomic share_members[SHARE_MAX];
static _Atomic int share_count;
static _Atomic int share_hungry; ///< members hungry now

void green_sched_share(green_sched *s, int (*movable)(green_fiber *f, green_sched *to)) {
    if (s->share.movable) return;
    int i = atomic_fetch_add(&share_count, 1);
    if (i >= SHARE_MAX) {
        atomic_fetch_sub(&share_count, 1);
        return;
    }
    green_sched_retain_external(s); // for good: retain and release are no-ops from now on
    s->share.movable = movable;
    s->share.bit = UINT64_C(1) << i;
    atomic_store_explicit(&share_members[i], s, memory_order_release);
}

green_sched *green_share_member(int bit) {
    return bit >= 0 && bit < SHARE_MAX ? atomic_load_explicit(&share_members[bit], memory_order_acquire) : NULL;
}

void green_sched_post_closed_fd(green_sched *s, int fd) {
    int posted = 0;
    for (int i = 0; i < GREEN_CLOSED_FD_SLOTS && !posted; i++) {
        int v = atomic_load(&s->inbox.closed_fds[i]);
        if (v == fd + 1) posted = 1; // already told, not yet taken
        else if (v == 0) posted = atomic_compare_exchange_strong(&s->inbox.closed_fds[i], &v, fd + 1);
    }
    if (!posted) atomic_store(&s->inbox.closed_overflow, true);
    atomic_store(&s->inbox.closed_any, true); // after the slot: the hub looks at the slots after taking this
    notify_hub(s);
}

void green_sched_post_retry_writers(green_sched *s, uint64_t note) {
    int posted = 0;
    for (int i = 0; i < GREEN_RETRY_SLOTS && !posted; i++) {
        uint64_t v = atomic_load(&s->inbox.retry_notes[i]);
        if (v == note) posted = 1; // already told, not yet taken
        else if (v == 0) posted = atomic_compare_exchange_strong(&s->inbox.retry_notes[i], &v, note);
    }
    if (!posted) atomic_store(&s->inbox.retry_overflow, true);
    atomic_store(&s->inbox.closed_any, true); // after the slot, as a close's
    notify_hub(s);
}

void green_sched_post_closed_all(green_sched *s) {
    atomic_store(&s->inbox.closed_overflow, true);
    atomic_store(&s->inbox.closed_any, true);
    notify_hub(s);
}

static green_sched *take_hungry(green_sched *s) {
    int n = atomic_load_explicit(&share_count, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        green_sched *m = atomic_load_explicit(&share_members[i], memory_order_acquire);
        int yes = 1;
        if (m && m != s && atomic_load_explicit(&m->share.hungry, memory_order_relaxed) &&
            atomic_compare_exchange_strong(&m->share.hungry, &yes, 0)) {
            atomic_fetch_sub(&share_hungry, 1);
            return m;
        }
    }
    return NULL;
}

static void adopt_later(green_sched *to, green_fiber *f);

/// Give a ready fiber to a hungry hub, keeping at least one for this one.
static void share_ready(green_sched *s) {
    if (!s->share.movable || s->run.ready_head == s->run.ready_tail) return;
    green_fiber *prev = NULL, *f;
    int looked = 0;
    for (f = s->run.ready_head; f && looked < 16; prev = f, f = f->run_next, looked++) {
        // Not the one switching out now (a yield queues itself first): its
        // context is saved only by the switch.
        // Nor one that has not run yet and was promised a stack of this hub's pool.
        // (One that a finished fiber runs, on that fiber's stack, may move:
        // ending on another hub, it sends the stack home.)
        if (f != s->run.current && f != s->run.root && !f->pins && !f->timeouts && f->sp) break;
    }
    if (looked == 16) return; // the queue's first few cannot move: not worth a longer walk on each switch
    if (!f) return;
    green_sched *to = take_hungry(s);
    if (!to) return;
    if (!s->share.movable(f, to)) {
        notify_hub(to); // it stays: the other hub looks again, and says it is hungry again
        return;
    }
    if (prev) prev->run_next = f->run_next;
    else s->run.ready_head = f->run_next;
    if (s->run.ready_tail == f) s->run.ready_tail = prev;
    green_census_remove(s, f); // no longer this hub's fiber
    f->sched = to;
    adopt_later(to, f);
}

/// Give the CPU to the next ready fiber, or to the hub when the budget is
/// spent or nothing is ready. Returns the calling fiber, running again.
__attribute__((always_inline)) static inline green_fiber *schedule_next(green_sched *s) {
    if (__builtin_expect(atomic_load_explicit(&share_hungry, memory_order_relaxed) > 0, 0)) share_ready(s);
    green_fiber *next = NULL;
    if (s->run.budget) {
        next = pop_ready(s);
        if (next) s->run.budget--;
    }
    return switch_to(s, next ? next : s->run.hub);
}

// ---- interruptions ---------------------------------------------------------

int green_take_interrupt(green_fiber *f) {
    if (f->flags & FIBER_CANCEL_PENDING) {
        f->flags &= ~FIBER_CANCEL_PENDING;
        return GREEN_WAKE_CANCELLED;
    }
    if (f->timeouts_fired) {
        green_timeout *outermost = NULL;
        for (green_timeout *t = f->timeouts; t; t = t->outer)
            if (t->fired && !t->reported) outermost = t;
        if (outermost) {
            outermost->reported = true;
            f->timeouts_fired--;
            f->expired = outermost;
            return GREEN_WAKE_TIMEOUT_SCOPE;
        }
    }
    return 0;
}

/// A fiber resumes (from a park, a yield or a fair turn) with a resume hook
/// requested: run it here, on the fiber's own stack. A wake made only to
/// get it running (GREEN_WAKE_SIGNAL) stays one if the hook says the
/// blocking call is interrupted; otherwise it is a spurious wake-up, which
/// every park's caller handles by waiting again.
static void run_resume_hook(green_sched *s, green_fiber *self) {
    atomic_store(&self->resume_pending, 0);
    int8_t reason = self->wake_reason;
    int interrupt = s->owner.on_resume ? s->owner.on_resume(self) : 1;
    if (reason == GREEN_WAKE_SIGNAL && !interrupt && !(self->park_flags & GREEN_PARK_NO_RESTART))
        reason = GREEN_WAKE_NORMAL;
    self->wake_reason = reason; // the hook may have parked meanwhile
}

int green_park(int flags) {
    green_sched *s = green_tls_sched;
    green_fiber *self = s->run.current;
    if (!(flags & GREEN_PARK_UNINTERRUPTIBLE) && (self->flags & FIBER_CANCEL_PENDING || self->timeouts_fired)) {
        int r = green_take_interrupt(self);
        if (r) return r;
    }
    self->state = GREEN_FIBER_PARKED;
    self->park_flags = (uint8_t)flags;
    self->wake_reason = GREEN_WAKE_NORMAL;
    self->parked_at = ev_now(s->loop);
    self = schedule_next(s);
    if (__builtin_expect(atomic_load_explicit(&self->resume_pending, memory_order_relaxed), 0))
        run_resume_hook(self->sched, self);
    self->wait_label = NULL;
    return self->wake_reason;
}

void green_wake(green_fiber *f, int reason) {
    if (f->state != GREEN_FIBER_PARKED) return;
    f->state = GREEN_FIBER_READY;
    f->wake_reason = (int8_t)reason;
    push_ready(f->sched, f);
}

int green_yield(void) {
    green_sched *s = green_tls_sched;
    if (!s) return 0;
    green_fiber *self = s->run.current;
    if (self->flags & FIBER_CANCEL_PENDING || self->timeouts_fired) {
        int r = green_take_interrupt(self);
        if (r) return r;
    }
    self->state = GREEN_FIBER_READY;
    // Alone in the ready queue: go through the hub so timers and I/O still
    // get polled while this fiber loops on yield().
    if (!s->run.ready_head) s->run.budget = 0;
    push_ready(s, self);
    self = schedule_next(s);
    if (__builtin_expect(atomic_load_explicit(&self->resume_pending, memory_order_relaxed), 0))
        run_resume_hook(self->sched, self);
    // A timeout scope that expired meanwhile is reported now, not later.
    return green_take_interrupt(self);
}

// ---- fairness ----------------------------------------------------------------

void green_fair_turn(void) { green_fair_check(); }

void green_fair_yield(void) {
    green_tls_fair_calls = 0;
    green_sched *s = green_tls_sched;
    if (!s || !green_tls_parkable) return; // not on a fiber that may park (a native thread, the hub)
    // Only the fiber running now: a signal handler that runs on the hub in
    // a switched-out fiber thread's TLS (green run) finds that thread's
    // `parkable` there, and a handler in the middle of a switch the one
    // switched from.
    green_fiber *self = s->run.current;
    if (green_tls_parkable != self || self == s->run.hub) return;
    // Nor a fiber whose body returned (a signal handler in its last steps,
    // in fiber_main): it is on no queue but the idle one, or is dead.
    if (self->state != GREEN_FIBER_RUNNING) return;
    // Ready again at the back of the queue, like green_yield, but a pending
    // cancellation or timeout stays pending for the call's next real park.
    self->state = GREEN_FIBER_READY;
    s->run.budget = 0; // through the hub, so that timers and I/O are polled too
    push_ready(s, self);
    self = schedule_next(s);
    if (__builtin_expect(atomic_load_explicit(&self->resume_pending, memory_order_relaxed), 0))
        run_resume_hook(self->sched, self);
}

// ---- preemption ------------------------------------------------------------------

int green_preempt_running(void) {
    green_sched *s = green_tls_sched;
    if (!s || !green_tls_parkable) return 0; // the hub, or not a fiber
    green_fiber *self = s->run.current;
    if (self == s->run.hub || self->state != GREEN_FIBER_RUNNING) return 0;
    // As a fair turn: at the back of the queue, through the hub, so that
    // timers and I/O that the others wait for are polled too.
    self->state = GREEN_FIBER_READY;
    s->run.budget = 0;
    push_ready(s, self);
    self = schedule_next(s);
    if (__builtin_expect(atomic_load_explicit(&self->resume_pending, memory_order_relaxed), 0))
        run_resume_hook(self->sched, self);
    return 1;
}

int green_sched_has_ready(green_sched *s) { return __atomic_load_n(&s->run.ready_head, __ATOMIC_RELAXED) != NULL; }

int green_sched_fiber_streak(green_sched *s, uint64_t *switches) {
    *switches = __atomic_load_n(&s->census.switches, __ATOMIC_RELAXED);
    if (__atomic_load_n(&s->census.in_loop, __ATOMIC_RELAXED)) return 0;
    green_fiber *current = __atomic_load_n(&s->run.current, __ATOMIC_RELAXED);
    return current != s->run.hub;
}

// ---- fibers ----------------------------------------------------------------------

/// A finished fiber that may wait here, stack and all, for a later
/// green_fiber_spawn (reuse_idle): one spawned with the default stack size
/// on this hub, whose stack is this hub's, while fewer than
/// IDLE_FIBERS_KEPT wait. Its next spawn then costs no stack promised,
/// taken, made ready and released, no first entry and no dead fiber's
/// release: a third of the C core's spawn + join.
static bool wait_for_reuse(green_sched *s, green_fiber *f) {
    if (!(f->flags & FIBER_REUSABLE) || f->keeper || f->tp || f->stack.home != &s->stacks ||
        s->records.nidle >= IDLE_FIBERS_KEPT)
        return false;
    f->run_next = s->records.idle;
    s->records.idle = f;
    s->records.nidle++;
    return true;
}

/// A fiber's body returned: wake its joiners; then wait to run a later
/// spawn's body (returns once reuse_idle gave it one and it runs again), or
/// hand the stack to whoever runs next and never return. Not inlined into
/// fiber_main's loop: there a compiler may read the thread pointer once,
/// before the body (aarch64 keeps TPIDR_EL0's value in a register), and a
/// `green run` fiber thread may end its body on another OS thread.
__attribute__((noinline)) static void fiber_finished(green_fiber *f) {
    green_sched *s = f->sched; // it may have moved to another hub meanwhile
    f->state = GREEN_FIBER_DONE;
    green_waitq_wake_all(&f->joiners);
    green_census_remove(s, f);
    if (wait_for_reuse(s, f)) {
        schedule_next(s);
        return;
    }
    s->run.dead = f;
    schedule_next(s);
    __builtin_unreachable();
}

static void fiber_main(void *arg) {
    green_fiber *f = arg;
    after_switch(f->sched);
    for (;;) {
        errno = 0;
        f->entry(f->entry_arg);
        fiber_finished(f);
    }
}

/// Release the finished fibers that wait for reuse: their stacks to the
/// pool, their records to the cache (a hub's end).
static void release_idle(green_sched *s) {
    while (s->records.idle) {
        green_fiber *f = s->records.idle;
        s->records.idle = f->run_next;
        s->records.nidle--;
        TSAN_FIBER_DESTROY(f);
        green_stack st = f->stack;
        green_stack_release(&s->stacks, &st);
        record_put(s, f);
    }
}

/// A stack with the fiber's own record at its top, then `reserve` bytes
/// (aligned to `align`) for its owner, set to start in fn(arg) (fn(record)
/// when arg is NULL) below them.
static green_fiber *new_fiber_record(green_sched *s, size_t stack_size, size_t reserve, size_t align,
                                     void (*fn)(void *), void *arg) {
    green_stack st;
    size_t record = (sizeof(green_fiber) + 63) & ~(size_t)63;
    size_t extra = reserve ? reserve + align : 0;
    if (green_stack_alloc(&s->stacks, stack_size + record + extra, &st) != 0) return NULL;
    green_fiber *f = (green_fiber *)(st.hi - record);
    memset(f, 0, sizeof *f);
    f->stack = st;
    f->sched = s;
    f->top = reserve ? (void *)(((uintptr_t)f - reserve) & ~(uintptr_t)(align - 1)) : (void *)f;
    f->sp = green_ctx_make(f->top, fn, arg ? arg : f);
    TSAN_FIBER_CREATE(f);
    return f;
}

static green_fiber *create_on(green_sched *target, size_t stack_size, size_t reserve, size_t align,
                              void (*entry)(void *), void *arg, uintptr_t *leftover) {
    green_sched *s = green_sched_create(); // the stack comes from the caller's own pool
    if (!s) return NULL;
    if (!stack_size) stack_size = GREEN_DEFAULT_STACK_SIZE;
    if (stack_size > GREEN_MAX_STACK_SIZE || (align & (align - 1)) || reserve > GREEN_MAX_STACK_SIZE) {
        errno = EINVAL;
        return NULL;
    }
    green_fiber *f = new_fiber_record(s, stack_size, reserve, align ? align : 16, fiber_main, NULL);
    if (!f) return NULL;
    if (leftover) *leftover = f->stack.leftover; // what the stack's last owner left
    f->stack.leftover = 0; // until its new owner says otherwise
    f->sched = target ? target : s;
    f->entry = entry;
    f->entry_arg = reserve ? f->top : arg;
    f->state = GREEN_FIBER_READY;
    f->joiners.label = "join";
    return f;
}

green_fiber *green_fiber_create_on(green_sched *target, size_t stack_size, void (*entry)(void *), void *arg) {
    return create_on(target, stack_size, 0, 0, entry, arg, NULL);
}

green_fiber *green_fiber_create_reserving(green_sched *target, size_t stack_size, size_t reserve, size_t align,
                                          void (*entry)(void *), void **reserved) {
    green_fiber *f = create_on(target, stack_size, reserve ? reserve : 1, align, entry, NULL, NULL);
    if (f) *reserved = f->top;
    return f;
}

green_fiber *green_fiber_create_reusing(green_sched *target, size_t stack_size, size_t reserve, size_t align,
                                        void (*entry)(void *), void **reserved, uintptr_t *leftover) {
    green_fiber *f = create_on(target, stack_size, reserve ? reserve : 1, align, entry, NULL, leftover);
    if (f) *reserved = f->top;
    return f;
}

void green_fiber_leave_in_stack(green_fiber *f, uintptr_t leftover) { f->stack.leftover = leftover; }

void green_census_remove(green_sched *s, green_fiber *f) {
    __atomic_store_n(&s->census.live, s->census.live - 1, __ATOMIC_RELAXED); // plain store; the monitor reads it
    if (f->all_prev) f->all_prev->all_next = f->all_next;
    else __atomic_store_n(&s->census.all, f->all_next, __ATOMIC_RELAXED); // the monitor reads the head
    if (f->all_next) f->all_next->all_prev = f->all_prev;
}

void green_adopt_later(green_sched *s, green_fiber *f) { adopt_later(s, f); }

/// On f's hub: count it among the hub's fibers and queue it.
static void adopt(green_sched *s, green_fiber *f) {
    f->id = ++s->census.next_id;
    f->all_prev = NULL;
    f->all_next = s->census.all;
    if (s->census.all) s->census.all->all_prev = f;
    __atomic_store_n(&s->census.all, f, __ATOMIC_RELAXED);
    __atomic_store_n(&s->census.live, s->census.live + 1, __ATOMIC_RELAXED);
    push_ready(s, f);
}

void green_fiber_start(green_fiber *f) {
    green_sched *s = f->sched;
    if (s == green_tls_sched) {
        adopt(s, f);
        return;
    }
    adopt_later(s, f);
}

/// Hand f to hub s from another thread: s adopts it in its notify callback.
static void adopt_later(green_sched *s, green_fiber *f) {
    green_fiber *head = atomic_load_explicit(&s->inbox.adopted, memory_order_relaxed);
    do f->run_next = head;
    while (!atomic_compare_exchange_weak_explicit(&s->inbox.adopted, &head, f, memory_order_release,
                                                  memory_order_relaxed));
    notify_hub(s);
}

/// On the hub: start the fibers other threads made for it, oldest first.
static void adopt_remote(green_sched *s) {
    green_fiber *f = atomic_exchange_explicit(&s->inbox.adopted, NULL, memory_order_acquire), *oldest = NULL;
    while (f) { // newest first: reverse
        green_fiber *next = f->run_next;
        f->run_next = oldest;
        oldest = f;
        f = next;
    }
    while (oldest) {
        green_fiber *next = oldest->run_next;
        adopt(s, oldest);
        oldest = next;
    }
}

/// A fiber of this hub with its record on the heap and its stack promised,
/// taken at its first run (give_stack); NULL when the pool has no class for
/// the size (the caller makes one the usual way) or memory ran out.
static green_fiber *create_apart(green_sched *s, size_t stack_size, void (*entry)(void *), void *arg) {
    green_fiber *f = record_get(s);
    if (!f) return NULL;
    unsigned cls;
    if (green_stack_promise(&s->stacks, stack_size, &cls) != 0) {
        record_put(s, f);
        return NULL;
    }
    memset(f, 0, sizeof *f);
    f->flags = FIBER_RECORD_APART | (stack_size == GREEN_DEFAULT_STACK_SIZE ? FIBER_REUSABLE : 0);
    f->stack.cls = cls; // the class promised; sp stays NULL until the first run
    f->sched = s;
    f->entry = entry;
    f->entry_arg = arg;
    f->state = GREEN_FIBER_READY;
    f->joiners.label = "join";
    TSAN_FIBER_CREATE(f);
    return f;
}

/// A fiber that waits for reuse in fiber_main (wait_for_reuse), made new:
/// everything of the one that finished is forgotten but its stack, its
/// saved context in fiber_main's loop and ThreadSanitizer's record of them.
static green_fiber *reuse_idle(green_sched *s, void (*entry)(void *), void *arg) {
    green_fiber *f = s->records.idle;
    s->records.idle = f->run_next;
    s->records.nidle--;
    void *sp = f->sp, *top = f->top, *tsan_fiber = f->tsan_fiber;
    green_stack stack = f->stack;
    memset(f, 0, sizeof *f);
    f->sp = sp;
    f->top = top;
    f->tsan_fiber = tsan_fiber;
    f->stack = stack;
    f->flags = FIBER_RECORD_APART | FIBER_REUSABLE;
    f->sched = s;
    f->entry = entry;
    f->entry_arg = arg;
    f->state = GREEN_FIBER_READY;
    f->joiners.label = "join";
    return f;
}

green_fiber *green_fiber_spawn(size_t stack_size, void (*entry)(void *), void *arg) {
    green_sched *s = green_sched_create();
    if (!s) return NULL;
    if (!stack_size) stack_size = GREEN_DEFAULT_STACK_SIZE;
    green_fiber *f = NULL;
    if (stack_size == GREEN_DEFAULT_STACK_SIZE && s->records.idle) f = reuse_idle(s, entry, arg);
    else if (stack_size <= GREEN_MAX_STACK_SIZE) f = create_apart(s, stack_size, entry, arg);
    // Else the usual way, and its errors (EINVAL, ENOMEM); errno is the
    // caller's business only when this returns NULL.
    if (!f) f = green_fiber_create_on(NULL, stack_size, entry, arg);
    if (f) adopt(f->sched, f);
    return f;
}

void green_fiber_set_thread_pointer(green_fiber *f, void *tp) {
    green_tp_prepare();
    f->tp = tp;
    green_sched *s = f->sched;
    if (s->run.current != f) return; // loaded by the switch into it
    void *now = tp ? tp : s->tp.native;
    if (now == s->tp.now) return;
    green_tp_write(now);
    s->tp.now = now;
    green_note_loaded_tls(s, f); // this TLS's own copies of the core's per-thread state
}

void *green_sched_native_thread_pointer(green_sched *s) { return s ? s->tp.native : NULL; }

void *green_thread_pointer_swap(void *tp) {
    void *old = green_tp_read();
    if (tp != old) green_tp_write(tp);
    return old;
}

green_fiber *green_fiber_current(void) {
    green_sched *s = green_tls_sched;
    return (s && s->run.current != s->run.hub) ? s->run.current : NULL;
}

green_fiber *green_parkable_fiber(void) { return green_tls_parkable; }

uint64_t green_fiber_id(const green_fiber *f) { return f->id; }
green_sched *green_fiber_sched(const green_fiber *f) { return f->sched; }

_Static_assert(offsetof(struct green_fiber, owner_id) == GREEN_FIBER_OWNER_ID_OFFSET, "the hub ABI reads owner_id there");
_Static_assert(offsetof(struct green_fiber, timeouts_fired) + sizeof(uint32_t) == 64 &&
                   offsetof(struct green_fiber, timeouts) + sizeof(void *) <= 128,
               "a park, a wake and a switch touch the record's first two cache lines only");

/// Owner ids run from just above any kernel tid (pid_max is at most 2^22) to
/// INT32_MAX, then start again. Only fibers that take a recursive or
/// error-checking mutex or an rwlock get one (a default mutex records the
/// thread's tid, as glibc's), so a clash needs such a lock held by one fiber
/// while two billion others took theirs.
#define FIRST_OWNER_ID (1 << 23)
static _Atomic int32_t next_owner_id = FIRST_OWNER_ID;

int32_t green_fiber_owner_id(green_fiber *f) {
    if (__builtin_expect(f->owner_id != 0, 1)) return f->owner_id;
    int32_t id = atomic_load_explicit(&next_owner_id, memory_order_relaxed), next;
    do next = id == INT32_MAX ? FIRST_OWNER_ID : id + 1; // wraps without signed overflow
    while (!atomic_compare_exchange_weak_explicit(&next_owner_id, &id, next, memory_order_relaxed,
                                                  memory_order_relaxed));
    f->owner_id = id;
    return id;
}
green_fiber_state green_fiber_state_of(const green_fiber *f) { return (green_fiber_state)f->state; }
void green_fiber_set_owner(green_fiber *f, void *owner) { f->owner = owner; }
void *green_fiber_owner(const green_fiber *f) { return f->owner; }
size_t green_fiber_stack_size(const green_fiber *f) { return (size_t)((const char *)f->top - f->stack.lo); }

void green_fiber_stack_bounds(const green_fiber *f, void **lo, void **hi) {
    *lo = f->stack.lo;
    *hi = f->stack.lo ? f->stack.hi : NULL; // the fiber's record and any reserve included, as glibc counts its descriptor
}

void green_fiber_set_name(green_fiber *f, const char *name) {
    if (!name) { f->name[0] = 0; return; }
    strncpy(f->name, name, sizeof f->name - 1);
    f->name[sizeof f->name - 1] = 0;
}

const char *green_fiber_name(const green_fiber *f) { return f->name; }

void green_fiber_cancel(green_fiber *f) {
    if (f->state == GREEN_FIBER_DONE) return;
    f->flags |= FIBER_CANCEL_REQUESTED | FIBER_CANCEL_PENDING;
    if (f->state == GREEN_FIBER_PARKED && !(f->park_flags & GREEN_PARK_UNINTERRUPTIBLE)) {
        f->flags &= ~FIBER_CANCEL_PENDING;
        green_wake(f, GREEN_WAKE_CANCELLED);
    }
}

bool green_fiber_cancel_requested(const green_fiber *f) { return f->flags & FIBER_CANCEL_REQUESTED; }

void green_rearm_interrupt(int reason) {
    green_sched *s = green_tls_sched;
    if (!s) return;
    green_fiber *self = s->run.current;
    if (reason == GREEN_WAKE_CANCELLED) {
        self->flags |= FIBER_CANCEL_PENDING;
    } else if (reason == GREEN_WAKE_TIMEOUT_SCOPE && self->expired && self->expired->reported) {
        self->expired->reported = false;
        self->timeouts_fired++;
    }
}

int green_fiber_join(green_fiber *f, int64_t deadline, int flags) {
    if (f->state == GREEN_FIBER_DONE) return 0;
    return green_waitq_park(&f->joiners, deadline, flags);
}

// ---- the hub ---------------------------------------------------------------------

void green_wake_remote(green_remote_wake *w) {
    green_sched *s = w->fiber->sched;
    green_remote_wake *head = atomic_load_explicit(&s->inbox.remote_wakes, memory_order_relaxed);
    do w->next = head;
    while (!atomic_compare_exchange_weak_explicit(&s->inbox.remote_wakes, &head, w, memory_order_release,
                                                  memory_order_relaxed));
    notify_hub(s);
}

bool green_wake_from_anywhere(green_remote_wake *w) {
    if (w->fiber->sched != green_tls_sched) {
        green_wake_remote(w);
        return true;
    }
    w->delivered = 1;
    green_wake(w->fiber, GREEN_WAKE_NORMAL);
    return false;
}

/// On the hub: wake the fibers other threads (or signal handlers) asked for.
static void deliver_remote_wakes(green_sched *s) {
    green_remote_wake *w = atomic_exchange_explicit(&s->inbox.remote_wakes, NULL, memory_order_acquire);
    while (w) {
        green_remote_wake *next = w->next; // w may be reused once its fiber runs
        if (w->fiber->sched != s) {
            // The fiber moved to another hub (green_sched_share) since the
            // wake was sent: only its hub may touch its ready queue.
            green_wake_remote(w);
        } else {
            w->delivered = 1;
            green_wake(w->fiber, GREEN_WAKE_NORMAL);
        }
        w = next;
    }
}

void green_sched_interrupt_syscalls(green_sched *s) {
    atomic_store(&s->inbox.interrupt_requested, 1);
    notify_hub(s);
}

void green_fiber_request_resume(green_fiber *f) {
    atomic_store(&f->resume_pending, 1);
    green_fiber_interrupt_syscall(f); // parked in a blocking call: woken now to run it
}

void green_sched_set_resume_hook(green_sched *s, int (*hook)(green_fiber *f)) { s->owner.on_resume = hook; }

/// What handlers ran for a fiber (its `signalled` bits).
enum {
    SIGNALLED_INTERRUPT = 1, ///< one without SA_RESTART, or one its resume hook is to run
    SIGNALLED_RESTART = 2,   ///< only SA_RESTART ones: a wait the kernel never restarts ends
};

static void note_signalled(green_fiber *f, uint8_t bit) {
    green_sched *s = f->sched;
    atomic_fetch_or(&f->signalled, bit);
    int none = 0;
    atomic_compare_exchange_strong(&s->inbox.interrupt_requested, &none, 2); // "every fiber" (1) stays
    notify_hub(s);
}

void green_fiber_interrupt_syscall(green_fiber *f) { note_signalled(f, SIGNALLED_INTERRUPT); }
void green_fiber_forget_interrupt(green_fiber *f) { atomic_store(&f->signalled, 0); }
void green_fiber_restartable_handler_ran(green_fiber *f) { note_signalled(f, SIGNALLED_RESTART); }

/// On the hub, after a signal handler asked for it: wake the blocking calls,
/// of every fiber (all: 1) or of the fibers a handler ran for (2), and the
/// parks that take their own thread's signals (GREEN_PARK_SIGNALS: lock and
/// futex waits, which a process-wide "every fiber" leaves alone). After only
/// SA_RESTART handlers, only the waits the kernel never restarts end. A fiber
/// that was running meanwhile forgets it: natively a handler that runs
/// between two calls interrupts neither.
static void interrupt_syscall(green_fiber *f, int all) {
    int mine = atomic_exchange(&f->signalled, 0);
    if (f->state != GREEN_FIBER_PARKED) return;
    int in_call = (f->park_flags & GREEN_PARK_SYSCALL) != 0, own_signals = (f->park_flags & GREEN_PARK_SIGNALS) != 0;
    int interrupt = ((all || (mine & SIGNALLED_INTERRUPT)) && in_call) || ((mine & SIGNALLED_INTERRUPT) && own_signals);
    int ends = (mine & SIGNALLED_RESTART) && (in_call || own_signals) && (f->park_flags & GREEN_PARK_NO_RESTART);
    if (interrupt || ends) green_wake(f, GREEN_WAKE_SIGNAL);
}

static void interrupt_syscalls(green_sched *s, int all) {
    interrupt_syscall(s->run.root, all);
    for (green_fiber *f = s->census.all; f; f = f->all_next) interrupt_syscall(f, all);
}

static void notify_cb(struct ev_loop *loop, ev_async *w, int revents) {
    (void)loop; (void)w; (void)revents;
    green_sched *s = green_tls_sched;
    // libev clears the watcher's `sent` flag with a plain store and then
    // calls this. A sender that posted a message and set `sent` again
    // between libev's read and that store is served by this call alone (its
    // flag was overwritten), so this call must read the inbox after the
    // store is visible. x86 lets a load pass an earlier store: without the
    // fence the inbox could be read first, that message missed, and no
    // further call would come (a fiber left in `adopted` for ever: the rare
    // multi-hub hang of fork_from_threads and hub_churn).
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->inbox.adopted, memory_order_relaxed)) adopt_remote(s);
    deliver_remote_wakes(s);
    fd_waits_take_closed(s);
    int interrupt = atomic_exchange(&s->inbox.interrupt_requested, 0);
    if (interrupt) interrupt_syscalls(s, interrupt == 1);
    void (*hook)(void) = atomic_load_explicit(&green_notify_hook, memory_order_relaxed);
    if (hook) hook();
    if (s->owner.on_notify) s->owner.on_notify(s->owner.object);
}

static void hub_main(void *arg) {
    green_sched *s = arg;
    after_switch(s);
    for (;;) {
        fd_waits_before_poll(s); // may make waiters ready: before `block` is decided
        int block = s->run.ready_head == NULL;
        if (block) green_stack_trim(&s->stacks, HOT_FREE_STACKS, TRIM_PER_IDLE);
        s->census.polls++;
        __atomic_store_n(&s->census.in_loop, 1, __ATOMIC_RELAXED);
        int hungry = block && s->share.movable && s->run.ready_head == NULL;
        if (hungry) { // the other hubs may give it work meanwhile (share_ready)
            atomic_store(&s->share.hungry, 1);
            atomic_fetch_add(&share_hungry, 1);
        }
        int active = ev_run(s->loop, block ? EVRUN_ONCE : EVRUN_NOWAIT);
        int still = 1;
        if (hungry && atomic_compare_exchange_strong(&s->share.hungry, &still, 0)) atomic_fetch_sub(&share_hungry, 1);
        __atomic_store_n(&s->census.in_loop, 0, __ATOMIC_RELAXED);
        if (!s->run.ready_head && !active && s->run.root->state == GREEN_FIBER_PARKED) {
            // No ready fiber and no watcher left: nothing can ever wake the
            // root context. Fail its wait instead of hanging (gevent's LoopExit).
            green_wake(s->run.root, GREEN_WAKE_DEADLOCK);
        }
        green_fiber *next = pop_ready(s);
        if (next) {
            s->run.budget = SWITCH_BUDGET;
            switch_to(s, next);
        }
    }
}

green_sched *green_sched_current(void) { return green_tls_sched; }

/// In a child after fork() only the forking thread lives on. Its hub gets a
/// fresh epoll set (libev's ev_loop_fork); the fibers it had stay as they
/// were, and the child's hub keeps working.
static void after_fork_in_child(void) {
    green_sched *s = green_tls_sched;
    if (s) ev_loop_fork(s->loop);
    // The other hubs' threads did not come along: share with none of them.
    int n = atomic_load(&share_count);
    for (int i = 0; i < n; i++) atomic_store(&share_members[i], NULL);
    atomic_store(&share_count, 0);
    atomic_store(&share_hungry, 0);
    if (s) s->share.bit = 0;
    if (s && s->share.movable) {
        atomic_store(&s->share.hungry, 0);
        atomic_store(&share_members[0], s);
        atomic_store(&share_count, 1);
        s->share.bit = 1;
    }
    // Which hubs wait on which fds: the parent's hubs are gone, and this
    // one has a new place in the group.
    fd_hubs_clear_all();
    if (s) fd_waits_after_fork(s);
}

void green_sched_keep_only_current(void) {
    green_sched *s = green_tls_sched;
    if (!s) return;
    green_fiber *self = s->run.current;
    s->run.ready_head = s->run.ready_tail = NULL;
    // Fibers other threads were handing over, and their wakes: gone with them.
    atomic_store(&s->inbox.adopted, NULL);
    atomic_store(&s->inbox.remote_wakes, NULL);
    if (s->run.root != self) s->run.root->state = GREEN_FIBER_DONE; // green_wake ignores DONE fibers
    for (green_fiber *f = s->census.all; f; f = f->all_next)
        if (f != self) f->state = GREEN_FIBER_DONE;
    __atomic_store_n(&s->census.all, self == s->run.root ? NULL : self, __ATOMIC_RELAXED);
    self->all_next = self->all_prev = NULL;
    __atomic_store_n(&s->census.live, self == s->run.root ? 0 : 1, __ATOMIC_RELAXED);
    green_stack_forget_promises(&s->stacks); // their fibers never run here
    edge_poller_forget_done(s);                 // nor return from their waits
}

// A fork child's first loop iteration. libev recreates its epoll fd and
// eventfd lazily, inside the first ev_run: after the fork watchers and before
// the poll. The fork watcher (lowest priority: the last callback before that)
// opens the window in which new fds are the core's, and a check watcher
// (highest priority: the first callback after the poll) closes it, so no
// callback that could run program code falls inside.
//
// That first poll must not block either: the child may have inherited
// libev's "wake-up already sent" flag from a parent whose hub had not yet
// handled a wake-up (a signal handler's, say). Until the hub handles it, a
// thread's ev_async_send sees the flag and writes nothing, so a thread-pool
// answer (getaddrinfo in a socat child) would wait for libev's 60 s maximum
// poll. An idle watcher makes that poll return at once; the wake-up that
// libev queues after a fork then runs, and clears the flag.
static void fork_done_cb(struct ev_loop *loop, ev_check *w, int revents) {
    (void)revents;
    green_sched *s = (green_sched *)((char *)w - offsetof(green_sched, fork.done));
    green_tls_making_internal_fds--;
    ev_ref(loop);
    ev_check_stop(loop, w);
    ev_ref(loop);
    ev_idle_stop(loop, &s->fork.nowait);
}

static void fork_nowait_cb(struct ev_loop *loop, ev_idle *w, int revents) {
    (void)loop; (void)w; (void)revents; // only there to keep the poll from blocking
}

static void fork_watch_cb(struct ev_loop *loop, ev_fork *w, int revents) {
    (void)revents;
    green_sched *s = (green_sched *)((char *)w - offsetof(green_sched, fork.watch));
    green_tls_making_internal_fds++;
    ev_check_start(loop, &s->fork.done);
    ev_unref(loop);
    ev_idle_start(loop, &s->fork.nowait);
    ev_unref(loop);
}

/// Destroy the loop: its fds are the core's to close.
static void destroy_loop(struct ev_loop *loop) {
    green_tls_making_internal_fds++;
    ev_loop_destroy(loop);
    green_tls_making_internal_fds--;
}

/// At thread exit: tear the hub down if no fiber is left alive on it (a
/// parked fiber's stack must stay mapped, so then it is kept, leaked).
static pthread_key_t exit_key;
static bool exit_key_made; ///< pthread_key_create can fail (PTHREAD_KEYS_MAX): then hubs outlive their threads

static void on_thread_exit(void *arg) {
    green_sched *s = arg;
    if (s->census.live != 0 || s->run.current != s->run.root) return;
    green_monitor_unregister(s);
    if (s->owner.on_destroy) s->owner.on_destroy(s->owner.object);
    destroy_loop(s->loop);
    TSAN_FIBER_DESTROY(s->run.hub);
    green_stack hub_stack = s->run.hub->stack;   // not running: we are on the thread's own stack
    green_stack_free(&s->stacks, &hub_stack);
    release_idle(s);
    green_stack_pool_destroy(&s->stacks);
    records_trim(s, 0, UINT_MAX);
    fd_waits_destroy(s);
    free(s->run.root);
    free(s);
    green_tls_sched = NULL;
    green_tls_parkable = NULL;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) {
    pthread_atfork(NULL, NULL, after_fork_in_child);
    exit_key_made = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

static green_sched *sched_make(void);

green_sched *green_sched_create(void) {
    green_sched *s = green_tls_sched;
    return s ? s : sched_make(); // the common case saves no registers
}

__attribute__((noinline)) static green_sched *sched_make(void) {
    int err = ENOMEM; // what the caller is told if this fails
    green_sched *s = calloc(1, sizeof *s);
    green_fiber *root = calloc(1, sizeof *root);
    if (!s || !root) goto fail;
    errno = 0;
    // ev_loop_new everywhere, never the default loop: the default loop reaps
    // every child process on SIGCHLD, which would break the program's own
    // waitpid/posix_spawn users.
    s->fd_waits.edges.epfd = -1; // made by the first wait that can use it
    green_tls_making_internal_fds++;
    s->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (s->loop) {
        ev_async_init(&s->inbox.notify, notify_cb);
        ev_async_start(s->loop, &s->inbox.notify); // libev's wake-up eventfd is made here
    }
    if (!s->loop && errno) err = errno; // epoll_create1's reason (EMFILE, ENFILE…)
    green_tls_making_internal_fds--;
    if (!s->loop) goto fail;
    root->sched = s;
    root->state = GREEN_FIBER_RUNNING;
    TSAN_FIBER_CURRENT(root);
    strcpy(root->name, "root");
    s->run.root = s->run.current = root;
    ev_unref(s->loop); // the wake-up alone does not keep waits alive
    ev_fork_init(&s->fork.watch, fork_watch_cb);
    ev_set_priority(&s->fork.watch, EV_MINPRI);
    ev_fork_start(s->loop, &s->fork.watch);
    ev_unref(s->loop);
    ev_check_init(&s->fork.done, fork_done_cb);
    ev_set_priority(&s->fork.done, EV_MAXPRI);
    ev_idle_init(&s->fork.nowait, fork_nowait_cb);
    green_tls_sched = s;
    green_tls_parkable = root;
    s->tp.native = s->tp.now = green_tp_read();
    __atomic_store_n(&errno_offset, (long)((char *)&errno - (char *)s->tp.native), __ATOMIC_RELAXED); // every hub: the same
    (void)green_libc_syscall(); // resolved now, not first in a signal handler
    pthread_once(&atfork_once, register_atfork);

    green_fiber *hub = new_fiber_record(s, HUB_STACK_SIZE, 0, 0, hub_main, s);
    if (!hub) goto fail_tls;
    strcpy(hub->name, "hub");
    s->run.hub = hub;
    green_overflow_install_for_thread();
    if (exit_key_made) pthread_setspecific(exit_key, s);
    green_monitor_register(s);
    return s;

fail_tls:
    green_tls_sched = NULL;
    green_tls_parkable = NULL;
    destroy_loop(s->loop);
fail:
    free(s);
    free(root);
    errno = err;
    return NULL;
}

void green_sched_set_owner(green_sched *s, void *owner, void (*on_notify)(void *), void (*on_destroy)(void *)) {
    s->owner.object = owner;
    s->owner.on_notify = on_notify;
    s->owner.on_destroy = on_destroy;
}

void *green_sched_owner(green_sched *s) { return s->owner.object; }
void green_sched_notify(green_sched *s) { notify_hub(s); }

// A hub that shares its fibers is kept alive for good (green_sched_share):
// a fiber that retains it may move on and release another.
void green_sched_retain_external(green_sched *s) {
    if (s->share.movable) return;
    if (s->owner.external++ == 0) ev_ref(s->loop);
}

void green_sched_release_external(green_sched *s) {
    if (s->share.movable) return;
    if (--s->owner.external == 0) ev_unref(s->loop);
}

green_fiber *green_sched_root(green_sched *s) { return s->run.root; }
uint64_t green_sched_switch_count(green_sched *s) { return s->census.switches; }
uint64_t green_sched_poll_count(green_sched *s) { return s->census.polls; }
uint64_t green_sched_live_fibers(green_sched *s) { return s->census.live; }
uint64_t green_sched_stacks_carved(green_sched *s) { return s->stacks.carved; }
