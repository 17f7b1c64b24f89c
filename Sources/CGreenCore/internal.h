// internal.h — the core's private structures. Not visible to Swift.
#ifndef GREEN_INTERNAL_H
#define GREEN_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include "green_core.h"
#include "green_hub_abi.h"

GREEN_HIDDEN_BEGIN

// ---- context switch (switch_*.S, context.c) ----

/// Save callee-saved registers and FP control words on the current stack,
/// store the stack pointer in *save_sp, load load_sp and resume there.
void green_ctx_switch(void **save_sp, void *load_sp);
/// Prepare a fresh stack whose first switch-in calls fn(arg). Returns its sp.
void *green_ctx_make(void *stack_top, void (*fn)(void *), void *arg);

// ---- libc's own sigaction (libc_syscall.c) ----

struct sigaction;
/// libc's sigaction, never `green run`'s interposer: the core's own handlers.
int green_libc_sigaction(int sig, const struct sigaction *act, struct sigaction *old);

// ---- thread pointer (thread_pointer.c) ----

/// Decide how the thread pointer is written (wrfsbase or arch_prctl).
void green_tp_prepare(void);
/// Load `tp` into the CPU's thread pointer: TLS accesses go through it from now.
void green_tp_write(void *tp);
/// The thread pointer in use.
void *green_tp_read(void);

// ---- stacks (stack.c) ----

typedef struct green_stack {
    char *guard;   ///< lowest address of the guard region
    char *lo;      ///< lowest usable address (just above the guard)
    char *hi;      ///< one past the highest usable address
    unsigned cls;  ///< size class index in the pool, or ~0u if mapped alone
} green_stack;

#define GREEN_GUARD_SIZE (64u * 1024u)

typedef struct green_stack_class {
    size_t size;        ///< usable bytes
    green_stack *dirty; ///< free stacks whose pages may be resident
    size_t ndirty, capdirty;
    green_stack *clean; ///< free stacks already returned to the kernel
    size_t nclean, capclean;
    char *slab_next;    ///< next uncarved stack in the current slab
    size_t slab_left;   ///< stacks left to carve in it
} green_stack_class;

#define GREEN_STACK_CLASSES 8

typedef struct green_slab {
    char *base;
    size_t size;
} green_slab;

typedef struct green_stack_pool {
    green_stack_class cls[GREEN_STACK_CLASSES];
    unsigned nclasses;
    green_slab *slabs;  ///< every mapping carved into stacks, for green_stack_pool_destroy
    size_t nslabs, capslabs;
} green_stack_pool;

int green_stack_alloc(green_stack_pool *p, size_t size, green_stack *out);
void green_stack_free(green_stack_pool *p, const green_stack *st);
/// Unmap every slab and free the lists (no stack of the pool may be in use).
void green_stack_pool_destroy(green_stack_pool *p);
/// Give the pages of up to `budget` surplus free stacks back to the kernel.
void green_stack_trim(green_stack_pool *p, size_t keep, size_t budget);

// ---- fibers and scheduler (scheduler.c) ----

enum {
    FIBER_CANCEL_REQUESTED = 1, ///< sticky: cancel() was called
    FIBER_CANCEL_PENDING = 2,   ///< not yet delivered by a park
    FIBER_IN_SYSCALL = 4,       ///< parked in a blocking call of the shim (a signal interrupts it)
};

struct green_fiber {
    void *sp;                    ///< saved stack pointer while switched out
    uintptr_t exclusivity[2];    ///< Swift's per-task access-set context
    int32_t owner_id;            ///< its id as a lock owner (green_fiber_owner_id), 0 until asked; at GREEN_FIBER_OWNER_ID_OFFSET
    green_fiber *run_next;       ///< ready-queue link
    green_fiber *wq_next, *wq_prev; ///< wait-queue links
    green_waitq *waitq;          ///< the wait queue it is parked on, if any
    green_sched *sched;
    void *owner;                 ///< the Swift Fiber object (unretained)
    void (*entry)(void *);
    void *entry_arg;
    green_timeout *timeouts;     ///< innermost active timeout scope
    green_timeout *expired;      ///< the scope last reported by a park
    green_waitq joiners;
    green_stack stack;
    uint64_t id;
    int saved_errno;
    uint8_t state;               ///< green_fiber_state
    uint8_t park_flags;
    uint8_t flags;               ///< FIBER_CANCEL_*
    int8_t wake_reason;
    uint32_t timeouts_fired;     ///< expired scopes not yet reported
    green_fiber *all_next, *all_prev; ///< the hub's list of live fibers (for dumps)
    const char *wait_label;      ///< what the current/next park waits for
    int wait_fd, wait_events;
    ev_tstamp parked_at;         ///< libev's time when it parked
    void *tsan_fiber;            ///< ThreadSanitizer's record of this stack (sanitizer builds)
    _Atomic uint8_t signalled;   ///< a handler ran for it: interrupt its blocking call (green_fiber_interrupt_syscall)
    _Atomic uint8_t resume_pending; ///< run the hub's resume hook when it next runs (green_fiber_request_resume)
    void *tp;                    ///< its own thread pointer (a program's thread under `green run`), or NULL: the hub thread's
    char name[48];
};

typedef struct green_fd_wait green_fd_wait;

struct green_sched {
    struct ev_loop *loop;
    green_fiber *current;
    green_fiber *root;
    green_fiber *hub;
    green_fiber *ready_head, *ready_tail;
    green_fiber *dead;           ///< finished fiber whose stack is released after the switch
    green_fiber *all;            ///< every live fiber, newest first
    unsigned budget;             ///< direct switches left before the hub polls I/O
    ev_async notify;
    ev_fork fork_watch;          ///< in a fork child, before libev recreates its fds: mark them internal
    ev_check fork_done;          ///< ...and right after it (see fork_watch_cb)
    ev_idle fork_nowait;         ///< keeps that first poll after a fork from blocking
    green_remote_wake *_Atomic remote_wakes; ///< pushed by any thread, drained by the hub
    _Atomic int interrupt_requested;         ///< 1: green_sched_interrupt_syscalls (every fiber); 2: some fibers' `signalled`
    void *owner;
    void (*on_notify)(void *owner);
    void (*on_destroy)(void *owner);
    int (*on_resume)(green_fiber *f);        ///< green_sched_set_resume_hook
    int external;                ///< green_sched_retain_external count
    uint64_t next_id, switches, polls, live;
    uint64_t fair_mark;          ///< `switches` when the running fiber's streak of unparked calls began
    unsigned fair_calls;         ///< calls completed without parking since then (green_fair_turn)
    pthread_t thread;            ///< the hub's own thread (for the blocking monitor)
    void *native_tp;             ///< the hub thread's own thread pointer (the hub and most fibers run on it)
    void *tp_now;                ///< the thread pointer loaded in the CPU now
    int in_loop;                 ///< 1 while the hub waits in libev (read by the monitor)
    green_sched *registry_next;  ///< all hubs of the process, for the blocking monitor
    green_fd_wait **fd_waits;    ///< per fd: the fibers parked on it (records on their stacks)
    size_t fd_waits_cap;
    green_stack_pool stacks;
};

struct green_timeout {
    ev_timer timer;
    green_fiber *fiber;
    green_timeout *outer;
    bool fired, reported;
};

extern __thread green_sched *green_tls_sched __attribute__((tls_model("initial-exec")));

/// Park the current fiber (state set by caller's protocol) and switch away.
int green_park(int flags);
/// A cancellation or expired timeout scope not yet delivered to f, or 0 (taking it).
int green_take_interrupt(green_fiber *f);

// ---- exclusivity (exclusivity.c) ----
void green_exclusivity_switch(green_fiber *from, green_fiber *to);

// ---- blocking monitor (monitor.c) ----

void green_monitor_register(green_sched *s);
void green_monitor_unregister(green_sched *s);

// ---- stack overflow reporting (overflow.c) ----
void green_overflow_install_for_thread(void);

GREEN_HIDDEN_END

#endif
