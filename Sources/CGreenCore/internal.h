// internal.h — the core's private structures. Not visible to Swift.
#ifndef GREEN_INTERNAL_H
#define GREEN_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include "green_core.h"
#include "green_hub_abi.h"

GREEN_HIDDEN_BEGIN

// ---- context switch (switch_*.S, context.c) ----

/// Save callee-saved registers and FP control words on the current stack,
/// store the stack pointer in *save_sp, load load_sp and resume there.
/// The context resumed gets `pass` as the return value of the switch it
/// made: the scheduler passes the fiber it resumes, so a fiber learns who it
/// is on its way back without keeping that in a callee-saved register (whose
/// save in every caller would double the switch's own).
void *green_ctx_switch(void **save_sp, void *load_sp, void *pass);
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
/// After green_tp_write: the core's per-thread state into the TLS now loaded
/// (scheduler.c). A call of its own, never inlined: a compiler may reuse
/// within one function the thread pointer it read before the write.
void green_note_loaded_tls(green_sched *s, green_fiber *parkable);
/// The same, read from the register every time: a compiler takes
/// __builtin_thread_pointer() for a constant within a function, but a
/// switch can come back on another hub's thread.
static inline void *green_tp_read_fresh(void) {
    void *tp;
#if defined(__x86_64__)
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
#else
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
#endif
    return tp;
}

// ---- stacks (stack.c) ----

struct green_stack_pool;

typedef struct green_stack {
    char *guard;   ///< lowest address of the guard region
    char *lo;      ///< lowest usable address (just above the guard)
    char *hi;      ///< one past the highest usable address
    unsigned cls;  ///< size class index in the pool, or ~0u if mapped alone
    struct green_stack_pool *home; ///< the pool it was carved for, and goes back to
    uintptr_t leftover;  ///< what its last owner says it left at its top, for the next one (0: nothing)
} green_stack;

#define GREEN_GUARD_SIZE (64u * 1024u)

typedef struct green_stack_class {
    size_t size;        ///< usable bytes
    green_stack *dirty; ///< free stacks whose pages may be resident
    size_t ndirty, capdirty;
    green_stack *clean; ///< free stacks already returned to the kernel
    size_t nclean, capclean;
    size_t promised;    ///< free stacks owed to fibers not yet run (green_stack_promise)
    char *slab_next;    ///< next uncarved stack in the current slab
    size_t slab_left;   ///< stacks left to carve in it
} green_stack_class;

#define GREEN_STACK_CLASSES 8

typedef struct green_slab {
    char *base;
    size_t size;
} green_slab;

typedef struct green_returned_stack green_returned_stack;

typedef struct green_stack_pool {
    green_stack_class cls[GREEN_STACK_CLASSES];
    green_returned_stack *_Atomic returned; ///< freed on another hub's thread: taken back at the next alloc
    unsigned nclasses;
    uint64_t carved;    ///< stacks carved from slabs so far (green_sched_stacks_carved)
    size_t last_asked;  ///< the size green_stack_promise was last asked for (0: none yet)
    unsigned last_cls;  ///< ... and its class
    green_slab *slabs;  ///< every mapping carved into stacks, for green_stack_pool_destroy
    size_t nslabs, capslabs;
} green_stack_pool;

int green_stack_alloc(green_stack_pool *p, size_t size, green_stack *out);
void green_stack_free(green_stack_pool *p, const green_stack *st);
/// Keep a free stack of `size` for a fiber that has not run yet (carving one
/// if none is spare, so that only this can fail), without touching its
/// memory; its class in *cls. -1: no stack (errno set), or a size the pool
/// has no class for (errno unchanged): allocate one now instead.
int green_stack_promise(green_stack_pool *p, size_t size, unsigned *cls);
/// At the fiber's first run: the promised stack, the most recently freed of
/// its class (likely still in the cache). Inline, as the release below:
/// every spawned fiber takes one and gives it back.
static inline void green_stack_take_promised(green_stack_pool *p, unsigned cls, green_stack *out) {
    green_stack_class *c = &p->cls[cls];
    c->promised--;
    *out = c->ndirty ? c->dirty[--c->ndirty] : c->clean[--c->nclean];
}
/// A fork child: the fibers the promises were for are gone.
void green_stack_forget_promises(green_stack_pool *p);
/// Free a stack on the thread owning `here`: into `here` if it is its home
/// pool, else handed back to its home (a lock-free push, any thread): a fiber
/// thread that a hub made for another (`green run --hubs`) dies there.
void green_stack_release_slow(green_stack_pool *here, const green_stack *st);
static inline void green_stack_release(green_stack_pool *here, const green_stack *st) {
    if (st->home == here && st->cls != ~0u) { // a stack of this pool's: onto its class's free list
        green_stack_class *c = &here->cls[st->cls];
        if (c->ndirty < c->capdirty) {
            c->dirty[c->ndirty++] = *st;
            return;
        }
    }
    green_stack_release_slow(here, st);
}
/// Unmap every slab and free the lists (no stack of the pool may be in use).
void green_stack_pool_destroy(green_stack_pool *p);
/// Give the pages of up to `budget` surplus free stacks back to the kernel.
void green_stack_trim(green_stack_pool *p, size_t keep, size_t budget);

// ---- fibers and scheduler (scheduler.c) ----

/// A park flag of the core's own, beside the public GREEN_PARK_*: the park
/// is a blocking call of the shim's (hub_abi.c), which a signal handler for
/// the thread interrupts (green_sched_interrupt_syscalls).
#define GREEN_PARK_SYSCALL 0x80

enum {
    FIBER_CANCEL_REQUESTED = 1, ///< sticky: cancel() was called
    FIBER_CANCEL_PENDING = 2,   ///< not yet delivered by a park
    FIBER_RECORD_APART = 8,     ///< its record is heap memory, not on its stack (green_fiber_spawn's)
    FIBER_REUSABLE = 16,        ///< spawned with the default stack size: done, it may wait for the next spawn (scheduler.c)
};

struct green_fiber {
    // Lines 0 and 1 (the records of spawned fibers are 64-byte aligned, on
    // the heap or at a stack's top; a thread's root record is calloc's):
    // all that a park, a wake and a switch touch, so that resuming one of
    // many parked fibers misses the cache on two lines of its record, not
    // on five.
    void *sp;                    ///< saved stack pointer while switched out; NULL until the first run of a fiber whose stack is only promised (FIBER_RECORD_APART), in fiber_main's loop for one a finished fiber runs (reuse_idle)
    uintptr_t exclusivity[2];    ///< Swift's per-task access-set context
    int32_t owner_id;            ///< its id as a lock owner (green_fiber_owner_id), 0 until asked; at GREEN_FIBER_OWNER_ID_OFFSET
    int saved_errno;
    green_fiber *run_next;       ///< ready-queue link
    green_sched *sched;
    void *tp;                    ///< its own thread pointer (a program's thread under `green run`), or NULL: the hub thread's
    uint8_t state;               ///< green_fiber_state
    uint8_t park_flags;
    uint8_t flags;               ///< FIBER_CANCEL_*
    int8_t wake_reason;
    uint32_t timeouts_fired;     ///< expired scopes not yet reported
    // line 1
    uint8_t pins;                ///< parks whose caller stops a watcher of this hub's loop after waking: not moved meanwhile
    _Atomic uint8_t signalled;   ///< handlers ran for it: SIGNALLED_INTERRUPT and/or SIGNALLED_RESTART (scheduler.c)
    _Atomic uint8_t resume_pending; ///< run the hub's resume hook when it next runs (green_fiber_request_resume)
    int wait_fd, wait_events;
    const char *wait_label;      ///< what the current/next park waits for
    ev_tstamp parked_at;         ///< libev's time when it parked
    green_fiber *wq_next, *wq_prev; ///< wait-queue links
    green_waitq *waitq;          ///< the wait queue it is parked on, if any
    green_timeout *timeouts;     ///< innermost active timeout scope
    // The rest: a fiber's start and end, joins, dumps.
    green_timeout *expired;      ///< the scope last reported by a park
    void *owner;                 ///< the Swift Fiber object (unretained)
    void (*entry)(void *);
    void *entry_arg;
    green_waitq joiners;
    green_stack stack;           ///< its stack; before a promised stack is taken, only `cls` (the class promised)
    uint64_t id;
    green_fiber *all_next, *all_prev; ///< the hub's list of live fibers (for dumps)
    void *tsan_fiber;            ///< ThreadSanitizer's record of this stack (sanitizer builds)
    void *top;                   ///< the highest address its frames may use (below a reserve: green_fiber_create_reserving)
    void (*keeper)(green_fiber *f); ///< owns the stack past the end (green_fiber_keep_stack), or NULL
    char name[48];
};

typedef struct green_fd_wait green_fd_wait;

// A hub's state, one slice per subsystem (as libdill's ctx.h): each slice is
// read and written by the file named in its comment, and by nothing else
// except where a field says who else reads it.

/// Who runs (scheduler.c): the fibers the switch moves between.
typedef struct green_run_state {
    green_fiber *current;        ///< running now (the monitor thread reads it)
    green_fiber *root;           ///< the thread's own context (main or pthread stack)
    green_fiber *hub;            ///< the fiber that polls libev
    green_fiber *ready_head, *ready_tail; ///< ready fibers, first in first out
    green_fiber *dead;           ///< finished fiber whose stack is released after the switch
    unsigned budget;             ///< direct switches left before the hub polls I/O
} green_run_state;

/// The thread pointer (scheduler.c): whose TLS the CPU uses now.
typedef struct green_tp_state {
    void *native;                ///< the hub thread's own (the hub and most fibers run on it)
    void *now;                   ///< the one loaded in the CPU now
} green_tp_state;

/// Entry from other threads and signal handlers (scheduler.c): the only
/// fields written off the hub's thread.
#define GREEN_CLOSED_FD_SLOTS 32
#define GREEN_RETRY_SLOTS 8

typedef struct green_inbox {
    ev_async notify;             ///< wakes the hub's poll
    green_remote_wake *_Atomic remote_wakes; ///< pushed by any thread, drained by the hub
    _Atomic int interrupt_requested;         ///< 1: green_sched_interrupt_syscalls (every fiber); 2: some fibers' `signalled`
    green_fiber *_Atomic adopted;            ///< fibers other threads made for this hub (green_fiber_start), newest first
    /// fds closed on other hubs while this one had waiters on them, each
    /// as fd + 1 (0: a free slot); when none is free, `closed_overflow`
    /// says check every fd waited on.
    _Atomic int closed_fds[GREEN_CLOSED_FD_SLOTS];
    _Atomic bool closed_overflow;
    /// Sockets whose writers must try again (green_fd_retry_writers), each
    /// as the number and the generation it had (fd_waits.c's retry_note; 0:
    /// a free slot); when none is free, `retry_overflow` says so.
    _Atomic uint64_t retry_notes[GREEN_RETRY_SLOTS];
    _Atomic bool retry_overflow;
    _Atomic bool closed_any;     ///< set after any slot or overflow above: something to look at
} green_inbox;

/// A fork child's first poll (scheduler.c, see fork_watch_cb).
typedef struct green_fork_state {
    ev_fork watch;               ///< before libev recreates its fds: mark them internal
    ev_check done;               ///< ...and right after it
    ev_idle nowait;              ///< keeps that first poll from blocking
} green_fork_state;

/// The object that owns the hub (the Swift `Hub`, or the preload library) and its hooks.
typedef struct green_owner_state {
    void *object;
    void (*on_notify)(void *object);   ///< after remote wakes are delivered
    void (*on_destroy)(void *object);  ///< at thread exit, before the hub is freed
    int (*on_resume)(green_fiber *f);  ///< green_sched_set_resume_hook
    int external;                ///< green_sched_retain_external count
} green_owner_state;

/// What the blocking monitor and fiber dumps read from another thread
/// (scheduler.c writes; monitor.c and snapshot.c read, with atomic loads).
typedef struct green_census {
    green_fiber *all;            ///< every live fiber, newest first
    uint64_t next_id;            ///< the last fiber id given out
    uint64_t live;               ///< fibers spawned and not yet finished
    uint64_t switches;           ///< context switches so far
    uint64_t polls;              ///< turns of the hub's loop
    int in_loop;                 ///< 1 while the hub waits in libev
} green_census;

/// Sharing ready fibers with the other hubs of the process (scheduler.c,
/// green_sched_share): off unless the owner asks.
typedef struct green_share_state {
    int (*movable)(green_fiber *f, green_sched *to); ///< the owner's say, and its preparation; NULL: not sharing
    _Atomic int hungry;          ///< 1 while the hub waits for events with nothing ready: give it work
    uint64_t bit;                ///< 1 << its place in the group (fd_hubs_*); 0 outside the group
} green_share_state;

/// The call the running fiber is making in the kernel, for hand-off
/// (handoff.c; the owner's watcher reads `word` from another thread).
typedef struct green_call_state {
    _Atomic uint64_t word;       ///< the call's sequence number << 2 | its state (handoff.c)
    green_call *current;         ///< its record, on the calling fiber's stack
    int allowed;                 ///< green_sched_allow_handoff was called
} green_call_state;

/// The hub's own edge-triggered epoll set (edge_poller.c), which libev
/// watches as one fd: a socket stays registered there between waits, and
/// its events wake fibers without a libev watcher per wait.
typedef struct green_edge_poller {
    int epfd;                    ///< -1 until the first wait that can use it
    bool unusable;               ///< it could not be made: every wait goes through libev
    /// The process forked since this hub last polled: the set is the
    /// parent's too (one kernel object), not to be touched until the hub
    /// lets go of it before its next poll (edge_poller_before_poll).
    bool forked;
    ev_io watcher;               ///< libev's watcher of epfd (unref'd: `waiting` holds the loop)
    uint32_t next_tag;           ///< tags for registrations, so that a stale event is told apart
    size_t waiting;              ///< waits parked on the set: while any, the loop holds one reference
} green_edge_poller;

/// Fibers parked on each fd (fd_waits.c; the records live on their stacks).
/// One fd number's entry (fd_waits.c): all that a wait on the number
/// reads, side by side, so that a server's wait misses the cache once for
/// its number rather than once per array (64 bytes: one line, aligned).
typedef struct green_fd_slot {
    green_fd_wait *waiters;      ///< the waits on it, newest first (the index green_fd_closing ends)
    /// The hub's kept watcher for it, heap memory, NULL until a lone waiter
    /// first waits on the number.
    green_fd_wait *kept;
    /// 1 + the word (fd_generations.c) under which this hub last registered
    /// it with its epoll set; 0 = not to be trusted. While it is current, a
    /// wait leaves the kernel's registration as it is.
    uint64_t registered;
    /// 1 + its entry in the table's `started` (valid while that entry names
    /// it), so that a number has one entry, the newest word.
    uint32_t started_slot;
    /// Its tag in the hub's edge set (edge_poller.c), 0 = not registered
    /// there: an event whose tag is not this is a stale one.
    uint32_t edge_tag;
    /// 1 + the word under which it was registered there (as `registered`).
    uint64_t edge_word;
    /// The fiber parked on it in the edge set for reading, for writing
    /// (one each; NULL when none): set by the wait, cleared when it returns.
    green_fiber *edge_reader, *edge_writer;
    /// What the edge set said of it that no wait took yet (EDGE_*).
    uint8_t edge_ready;
} green_fd_slot;

/// A number's edge state (green_fd_slot.edge_ready; edge_poller.c's events).
enum {
    /// An edge (bytes came, room freed) not taken yet: a wait that returns
    /// to a caller that calls again takes it (fd_waits.c's edge_wait), and
    /// only such a return, so that no edge is lost to a wait that ended
    /// otherwise (a signal, a deadline).
    EDGE_READ = GREEN_READ,
    EDGE_WRITE = GREEN_WRITE,
    /// Lasting states, for which a wait before a read (after a short one:
    /// GREEN_WAIT_SHORT_READ) returns at once: the end of the stream or a
    /// hang-up (reads; writes for a hang-up), urgent data (the short read
    /// may have stopped at its mark with bytes still queued). A wait after
    /// EAGAIN forgets its direction's: the kernel said they are over.
    EDGE_READ_CLOSED = EDGE_READ << 2,
    EDGE_WRITE_CLOSED = EDGE_WRITE << 2,
    EDGE_URGENT = 16,
};

/// Does any wait of this hub use the number (libev's or the edge set's)?
static inline bool fd_slot_has_waits(const green_fd_slot *slot) {
    return slot->waiters || slot->edge_reader || slot->edge_writer;
}

typedef struct green_fd_wait_table {
    green_fd_slot *slots;        ///< per number, `cap` of them
    size_t cap;
    /// Kept watchers whose wait ended since the last poll, still started:
    /// stopped before the next one unless a wait attached again.
    green_fd_wait *idle;
    /// The fds whose watchers started since this hub last polled, with
    /// their word then: a close by another hub's thread meanwhile is caught
    /// before libev gives the kernel a number that is no longer open (it
    /// aborts on EBADF). fd_waits_before_poll checks and empties it.
    struct green_fd_started { int fd; uint64_t word; } *started;
    size_t started_count, started_cap;
    green_edge_poller edges;     ///< the sockets that stay registered between waits
} green_fd_wait_table;

/// Before the hub polls: wake (GREEN_WAKE_FD_CLOSED) the waiters whose fd
/// was closed by another thread since their watcher started (fd_waits.c).
void fd_waits_before_poll(green_sched *s);
/// The hub's thread ends: free its fd-wait tables and kept watchers (after its loop).
void fd_waits_destroy(green_sched *s);

// edge_poller.c: the kernel's side of the edge set.

/// Register fd in s's edge set (made on first use) under a new tag, kept
/// in slot->edge_tag. 0, or -1 when it cannot be (libev's wait serves it).
int edge_poller_register(green_sched *s, int fd, green_fd_slot *slot);
/// Before the hub polls: in a fork child, let go of the parent's set and
/// wake the waits parked on it (they call again and wait in a new one).
void edge_poller_before_poll(green_sched *s);
/// The hub's thread ends (after its loop is destroyed): close the set.
void edge_poller_destroy(green_sched *s);
/// Recount the waits parked on the set after fibers were abandoned
/// (green_sched_keep_only_current): theirs never return.
void edge_poller_forget_done(green_sched *s);

// fd_generations.c: a word per fd number that changes when a close of it
// begins and when it ends. get: false while a close is in progress or when
// no word can be kept (then register every time). Every fd wait reads the
// word, so its reading is inline here (fd_generations.c explains the words).

/// What is known of one number: its word, and which hubs wait on it.
typedef struct {
    _Atomic uint64_t word;
    /// A bit per hub of the sharing group (green_sched_share) that has
    /// waiters on the number: a close on another hub tells those hubs.
    _Atomic uint64_t hubs;
} fd_entry;
#define FD_GENERATION_CHUNK_BITS 12
#define FD_GENERATION_MAX_CHUNKS 1024 // 4 M fds, as the shim's fd table
#define FD_GENERATION_IN_PROGRESS_MASK 0xffu
#define FD_GENERATION_RANGE_IN_PROGRESS_MASK 0xffffu
#define FD_GENERATION_RANGE_STEP 0x10000u
/// Where the range generation goes in a number's word: far above the
/// number's own generation (2^31 closes of one number to reach it).
#define FD_GENERATION_RANGE_SHIFT 40
extern _Atomic(fd_entry *) fd_generation_chunks[FD_GENERATION_MAX_CHUNKS];
extern _Atomic uint64_t fd_generation_range_word;
/// fd_generation_get for a number whose chunk is not made yet (or is out of range).
bool fd_generation_get_slow(int fd, uint64_t range, uint64_t *word);

static inline bool fd_generation_get(int fd, uint64_t *word) {
    uint64_t range = atomic_load_explicit(&fd_generation_range_word, memory_order_acquire);
    unsigned c = (unsigned)fd >> FD_GENERATION_CHUNK_BITS; // a negative fd is past the last chunk
    fd_entry *chunk = c < FD_GENERATION_MAX_CHUNKS
                          ? atomic_load_explicit(&fd_generation_chunks[c], memory_order_acquire) : NULL;
    if (__builtin_expect(!chunk, 0)) return fd_generation_get_slow(fd, range, word);
    // Sequentially consistent: after fd_hubs_add's or (see fd_generations.c).
    uint64_t own = atomic_load_explicit(&chunk[fd & ((1u << FD_GENERATION_CHUNK_BITS) - 1)].word,
                                        memory_order_seq_cst);
    *word = ((range / FD_GENERATION_RANGE_STEP) << FD_GENERATION_RANGE_SHIFT) + own;
    return (own & FD_GENERATION_IN_PROGRESS_MASK) == 0 && (range & FD_GENERATION_RANGE_IN_PROGRESS_MASK) == 0;
}
void fd_generation_closing(unsigned first, unsigned last);
void fd_generation_closed(unsigned first, unsigned last);
/// A close announced by fd_generation_closing that did not happen (a failed
/// dup2): the word goes back to what it was.
void fd_generation_undo_closing(unsigned fd);
/// A new generation for fd's own word (its in-progress count unchanged): a
/// range close marks so each number some hub waited on.
void fd_generation_moved(int fd);
/// `tell(fd)` for each number of [first, last] some hub has waited on.
void fd_hubs_each_waited(unsigned first, unsigned last, void (*tell)(int fd));
/// The part of a word that only closes of that one number move.
uint64_t fd_generation_own_part(uint64_t word);
/// The hubs (a bit each: green_share_state.bit) with waiters on fd.
void fd_hubs_add(int fd, uint64_t bit);
void fd_hubs_remove(int fd, uint64_t bit);
uint64_t fd_hubs_waiting(int fd);
/// In a fork child: no hub of the parent waits on anything any more.
void fd_hubs_clear_all(void);
/// In a fork child, once the surviving hub has its new bit: its waiters' fds
/// carry that bit (fd_waits.c).
void fd_waits_after_fork(green_sched *s);
/// Tell hub s that fd was closed on another hub (any thread): it wakes its
/// waiters that started before that close (scheduler.c).
void green_sched_post_closed_fd(green_sched *s, int fd);
/// Tell hub s that its waiters for writing on a socket must try their calls
/// again (green_fd_retry_writers; `note` says which socket), from any
/// thread or a signal handler.
void green_sched_post_retry_writers(green_sched *s, uint64_t note);
/// The same for every fd hub s waits on (a range close it cannot list).
void green_sched_post_closed_all(green_sched *s);
/// The hub of the sharing group with that bit, or NULL.
green_sched *green_share_member(int bit);
/// On the hub: wake the waiters of the fds other hubs closed (fd_waits.c).
void fd_waits_take_closed(green_sched *s);

/// Records of finished fibers whose record was not on their stack, kept for
/// the next green_fiber_spawn (scheduler.c).
typedef struct green_record_cache {
    green_fiber *free;           ///< linked through run_next
    unsigned count;
    /// Finished fibers parked in fiber_main with their stacks, each to run
    /// the body of a later spawn (Go's free goroutines); linked through
    /// run_next.
    green_fiber *idle;
    unsigned nidle;
} green_record_cache;

struct green_sched {
    struct ev_loop *loop;        ///< this hub's libev loop
    green_run_state run;
    green_tp_state tp;
    green_inbox inbox;
    green_fork_state fork;
    green_owner_state owner;
    green_census census;
    green_fd_wait_table fd_waits;
    green_share_state share;
    green_call_state call;
    green_stack_pool stacks;     ///< stack.c
    green_record_cache records;  ///< scheduler.c
};

struct green_timeout {
    ev_timer timer;
    green_fiber *fiber;
    green_timeout *outer;
    bool fired, reported;
};

extern __thread green_sched *green_tls_sched __attribute__((tls_model("initial-exec")));

/// Take f off hub s's list of live fibers (it finished, or moves to another hub).
void green_census_remove(green_sched *s, green_fiber *f);
/// What a fiber does first when switched back in: free the fiber that died switching to it.
void green_after_switch(green_sched *s);
/// Hand f to hub s from any thread: s queues it in its notify callback.
void green_adopt_later(green_sched *s, green_fiber *f);

/// Park the current fiber (state set by caller's protocol) and switch away.
int green_park(int flags);
/// A cancellation or expired timeout scope not yet delivered to f, or 0 (taking it).
int green_take_interrupt(green_fiber *f);

// ---- exclusivity (exclusivity.c) ----

/// What a switch does for Swift's exclusivity access set on this thread.
enum {
    GREEN_EXCLUSIVITY_UNKNOWN = 0, ///< not looked yet: the slow path looks
    GREEN_EXCLUSIVITY_SLOT,        ///< swap the list head in libswiftCore's TLS slot
    GREEN_EXCLUSIVITY_CALLS,       ///< through swift_task_exit/enterThreadLocalContext
    GREEN_EXCLUSIVITY_NONE,        ///< nothing to do (no Swift runtime, or turned off)
};
extern __thread int green_exclusivity_mode __attribute__((tls_model("initial-exec")));
extern __thread void **green_exclusivity_slot __attribute__((tls_model("initial-exec")));
void green_exclusivity_switch_slow(green_fiber *from, green_fiber *to);

/// Give `to` its own exclusivity access set (exclusivity.c): inline on
/// every switch, one TLS load and two stores when the slot is known.
static inline void green_exclusivity_switch(green_fiber *from, green_fiber *to) {
    if (__builtin_expect(green_exclusivity_mode == GREEN_EXCLUSIVITY_SLOT, 1)) {
        void **slot = green_exclusivity_slot;
        from->exclusivity[0] = (uintptr_t)*slot;
        *slot = (void *)to->exclusivity[0];
        return;
    }
    if (green_exclusivity_mode != GREEN_EXCLUSIVITY_NONE) green_exclusivity_switch_slow(from, to);
}

// ---- blocking monitor (monitor.c) ----

void green_monitor_register(green_sched *s);
void green_monitor_unregister(green_sched *s);
/// Call fn(s, arg) for every hub of the process but `except` (under the
/// registry's lock: not from a signal handler).
void green_monitor_each_hub(green_sched *except, void (*fn)(green_sched *s, void *arg), void *arg);

// ---- stack overflow reporting (overflow.c) ----
void green_overflow_install_for_thread(void);

GREEN_HIDDEN_END

#endif
