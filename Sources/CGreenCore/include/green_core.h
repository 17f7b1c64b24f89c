// green_core.h — the C core of Green: context switch, fiber stacks, the
// scheduler's mechanics (ready queue, park/wake, wait queues), libev waits
// and the hub ABI. The Swift runtime (module Green) builds on these; the
// interposition shim reaches the hub through green_hub_abi.h only.
//
// Everything here is per thread: a scheduler ("hub") belongs to the thread
// that created it, and its fibers never migrate.
#ifndef GREEN_CORE_H
#define GREEN_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "green_export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct green_fiber green_fiber;
typedef struct green_sched green_sched;
typedef struct green_timeout green_timeout;

/// No deadline: wait forever.
#define GREEN_NO_DEADLINE INT64_MAX

/// Why a park returned.
typedef enum green_wake_reason {
    GREEN_WAKE_NORMAL = 0,        ///< woken by what it waited for
    GREEN_WAKE_DEADLINE = 1,      ///< the wait's own deadline passed
    GREEN_WAKE_CANCELLED = 2,     ///< green_fiber_cancel() was called
    GREEN_WAKE_TIMEOUT_SCOPE = 3, ///< an enclosing timeout scope expired
    GREEN_WAKE_DEADLOCK = 4,      ///< nothing left could ever wake it (gevent's LoopExit)
    GREEN_WAKE_FD_CLOSED = 5,     ///< the fd it waited on was closed (green_fd_closing)
    GREEN_WAKE_SIGNAL = 6,        ///< a signal handler ran: a blocking call returns EINTR (green_sched_interrupt_syscalls)
} green_wake_reason;

/// Park flags.
enum {
    GREEN_PARK_UNINTERRUPTIBLE = 1, ///< cancellation and timeout scopes wait for the next park
    /// A signal handler for this fiber's thread (green_fiber_interrupt_syscall)
    /// ends the park with GREEN_WAKE_SIGNAL, so the handler runs at once, as a
    /// thread's does in a futex wait; the caller waits again or fails with EINTR.
    GREEN_PARK_SIGNALS = 2,
    /// A wait the kernel never restarts after a handler (poll, select,
    /// epoll_wait, sleeps, timed futex waits): any handler that ran for the
    /// thread ends it with GREEN_WAKE_SIGNAL, SA_RESTART or not.
    GREEN_PARK_NO_RESTART = 4,
};

typedef enum green_fiber_state {
    GREEN_FIBER_READY = 0,   ///< in the ready queue (or never started)
    GREEN_FIBER_RUNNING = 1,
    GREEN_FIBER_PARKED = 2,
    GREEN_FIBER_DONE = 3,
} green_fiber_state;

/// A FIFO of parked fibers, linked through the fibers themselves (no allocation).
/// A fiber is in at most one wait queue at a time.
typedef struct green_waitq {
    green_fiber *head;
    green_fiber *tail;
    const char *label; ///< what a fiber parked here waits for, for fiber dumps ("Event", "Lock"…)
} green_waitq;

/// One fiber as a dump shows it.
typedef struct green_fiber_info {
    uint64_t id;
    char name[48];
    green_fiber_state state;
    const char *waiting_on; ///< static label ("sleep", "fd", "Lock", "join"…), "" when not parked
    int fd;                 ///< the fd for "fd" waits, else -1
    int fd_events;          ///< GREEN_READ/GREEN_WRITE for "fd" waits
    double parked_seconds;  ///< how long it has been parked (by the hub's clock)
} green_fiber_info;

// ---- time ---------------------------------------------------------------

/// CLOCK_MONOTONIC in nanoseconds (vDSO, no syscall).
int64_t green_now_ns(void);

// ---- scheduler ----------------------------------------------------------

/// This thread's scheduler, or NULL if it has none yet.
green_sched *green_sched_current(void);
/// Create this thread's scheduler (a libev loop, the hub fiber, the root
/// context). Returns the existing one if there is one; NULL with errno on failure.
green_sched *green_sched_create(void);
/// The Swift Hub object, the function the hub calls (on the hub fiber) after
/// another thread called green_sched_notify(), and the one called when the
/// thread exits and the scheduler is torn down (no fiber left alive on it).
void green_sched_set_owner(green_sched *s, void *owner, void (*on_notify)(void *owner),
                           void (*on_destroy)(void *owner));
void *green_sched_owner(green_sched *s);
/// Thread-safe: wake the hub so it calls on_notify soon (ev_async).
void green_sched_notify(green_sched *s);
/// In a child after fork(), on the forking fiber: keep only it, as the kernel
/// keeps only the forking thread. Every other fiber of the hub (the root
/// context too, unless it forked) is abandoned: never run or woken again,
/// its stack left as it was.
void green_sched_keep_only_current(void);
/// Async-signal-safe: soon wake every fiber of `s` parked in a blocking call of
/// the shim (an fd wait or a sleep made through the hub ABI) with
/// GREEN_WAKE_SIGNAL, as a signal interrupts blocking system calls.
void green_sched_interrupt_syscalls(green_sched *s);
/// Hub thread only: while the count is above zero the hub's wake-up counts as
/// something that can still happen, so waits are not reported as deadlocks.
void green_sched_retain_external(green_sched *s);
void green_sched_release_external(green_sched *s);
/// The fiber standing for the thread's original context (e.g. `main`).
green_fiber *green_sched_root(green_sched *s);
/// Statistics: context switches and I/O polls made by this scheduler.
uint64_t green_sched_switch_count(green_sched *s);
uint64_t green_sched_poll_count(green_sched *s);
/// Live fibers (spawned, not yet finished).
uint64_t green_sched_live_fibers(green_sched *s);
/// Stacks hub s's pool has carved so far (each stays in the pool when
/// free): a count that grows only when more fibers are alive at once.
uint64_t green_sched_stacks_carved(green_sched *s);
/// Fill `out` with up to `max` fibers of the hub (the root context first,
/// then every live fiber); returns how many there are in all.
size_t green_sched_snapshot(green_sched *s, green_fiber_info *out, size_t max);
/// Label the current fiber's next park (for fiber dumps). Static strings only.
void green_set_wait_label(const char *label);

// ---- fibers -------------------------------------------------------------

/// Default usable stack size of a fiber (256 KiB).
#define GREEN_DEFAULT_STACK_SIZE (256u * 1024u)
/// Largest stack a fiber may ask for (1 GiB); more fails with EINVAL.
#define GREEN_MAX_STACK_SIZE ((size_t)1 << 30)

/// Create a fiber on the current thread's scheduler and put it in the ready
/// queue. `entry(arg)` runs on the fiber; when it returns the fiber is done.
/// Returns NULL with errno set when no stack could be had. The stack is
/// promised now and taken at the fiber's first run (the pool's most recently
/// freed); its record is heap memory, kept for reuse when it is done. With
/// the default stack size, a fiber that ended on this hub may run `entry`
/// instead, on its stack (up to 16 wait for that): a fiber record must not
/// be used after its fiber is done.
green_fiber *green_fiber_spawn(size_t stack_size, void (*entry)(void *arg), void *arg);

/// green_fiber_spawn in two steps, for a fiber that is to run on another
/// thread's hub (`green run --hubs`): make it (its stack from the calling
/// thread's pool; `target` NULL: the caller's hub), set it up, then start it.
/// Until green_fiber_start nothing runs it; from then on `target`'s thread
/// may run it at once. Returns NULL with errno set when no stack could be had.
green_fiber *green_fiber_create_on(green_sched *target, size_t stack_size, void (*entry)(void *arg), void *arg);
/// Queue a fiber made by green_fiber_create_on on its hub (any thread may call it).
void green_fiber_start(green_fiber *f);
/// green_fiber_create_on with `reserve` bytes for the caller at the top of
/// the stack, above the fiber's frames (as glibc keeps a thread's TLS and
/// descriptor at the top of its stack): *reserved points at them, aligned
/// to `align` (a power of two), and `entry` gets *reserved as its argument.
/// The `stack_size` bytes of stack stay the fiber's own.
green_fiber *green_fiber_create_reserving(green_sched *target, size_t stack_size, size_t reserve, size_t align,
                                          void (*entry)(void *reserved), void **reserved);
/// green_fiber_create_reserving that also says what the stack's last owner
/// left in it (green_fiber_leave_in_stack; 0: nothing: a new stack, or one
/// a fiber used otherwise; the pages may have gone back to the kernel
/// meanwhile, which makes them zero). Stacks of one size and reserve put the reserve at the
/// same place, so a leftover found is where its owner left it.
green_fiber *green_fiber_create_reusing(green_sched *target, size_t stack_size, size_t reserve, size_t align,
                                        void (*entry)(void *reserved), void **reserved, uintptr_t *leftover);
/// Say what f leaves at the top of its stack for the next
/// green_fiber_create_reusing that gets it (the preload library: a finished
/// thread's block, whose never-written parts are still zero, as glibc's
/// stack cache keeps a thread's descriptor). Nothing is freed or kept
/// alive for it: it only describes the memory.
void green_fiber_leave_in_stack(green_fiber *f, uintptr_t leftover);
/// Keep f's stack (and what it holds: its record, a reserve) past f's end:
/// once f has left it for good, `left(f)` is called on the hub f ended on
/// (from the scheduler, as another fiber resumes: it must not park), and the
/// stack is the caller's to give back with green_fiber_release_stack.
void green_fiber_keep_stack(green_fiber *f, void (*left)(green_fiber *f));
/// Give back the stack of a fiber that ended (after `left`), from any thread:
/// f and everything on its stack are gone after this.
void green_fiber_release_stack(green_fiber *f);
/// Give back a fiber made by green_fiber_create_on/_reserving that never
/// started (its set-up failed).
void green_fiber_discard(green_fiber *f);

/// Let hub `s` (the calling thread's) share ready fibers with the other hubs
/// that joined (`green run --hubs`): when one of them waits for events with
/// nothing to run, a hub with more than one fiber ready gives it one at its
/// next switch. `movable(f, to)` is asked, on the giving hub's thread, for a
/// ready fiber f that holds nothing of its hub: 0 keeps it; 1 lets it move,
/// after preparing it to run on `to` (f->sched is `to` from then on).
void green_sched_share(green_sched *s, int (*movable)(green_fiber *f, green_sched *to));

/// The running fiber (the root context counts), or NULL when this thread
/// has no scheduler or the hub itself is running.
green_fiber *green_fiber_current(void);

uint64_t green_fiber_id(const green_fiber *f);
/// The fiber's id as the owner of a mutex or rwlock: unique among live
/// fibers of every hub until the ids wrap (after 2^31 fibers that asked), and
/// never a kernel tid (which all fibers of a hub share).
int32_t green_fiber_owner_id(green_fiber *f);
/// The hub (scheduler) a fiber belongs to.
green_sched *green_fiber_sched(const green_fiber *f);
green_fiber_state green_fiber_state_of(const green_fiber *f);
void green_fiber_set_owner(green_fiber *f, void *owner);
void *green_fiber_owner(const green_fiber *f);
/// The name is copied (truncated to 47 bytes); the overflow report prints it.
void green_fiber_set_name(green_fiber *f, const char *name);
const char *green_fiber_name(const green_fiber *f);
size_t green_fiber_stack_size(const green_fiber *f);
/// A fiber's stack: [*lo, *hi), its record and any reserve at the top
/// included (as glibc's pthread_getattr_np counts a thread's TLS and
/// descriptor). The root context has none (both NULL).
void green_fiber_stack_bounds(const green_fiber *f, void **lo, void **hi);

/// Give a fiber a thread pointer of its own (x86_64: the FS base; aarch64:
/// TPIDR_EL0), loaded whenever it runs: `green run` gives each fiber that
/// stands for a program's thread its own TLS block and thread descriptor.
/// NULL: the hub thread's own (the default). On the running fiber it takes
/// effect at once.
void green_fiber_set_thread_pointer(green_fiber *f, void *tp);
/// The thread pointer of the hub's own thread (NULL without a hub).
void *green_sched_native_thread_pointer(green_sched *s);
/// Load `tp` as the CPU's thread pointer and return the one loaded before,
/// without telling the scheduler: for a signal handler that runs a program's
/// handler "on" another fiber thread. Put the old one back before returning.
void *green_thread_pointer_swap(void *tp);
/// Writing the thread pointer costs a system call (no FSGSBASE on this CPU
/// or kernel): 1, else 0.
int green_tp_uses_syscall(void);

/// From a signal handler (async-signal-safe): the handler ran for fiber `f`,
/// so if `f` is parked in a blocking call of the shim, that call fails with
/// EINTR, as a thread's would. Only `f`; green_sched_interrupt_syscalls is
/// for every fiber of a hub.
void green_fiber_interrupt_syscall(green_fiber *f);

/// Preemption (`green run` only: its fiber threads are threads, written to
/// be preempted). From a signal handler on the hub's thread that interrupted
/// a fiber in code the caller knows may be preempted (the program's own, not
/// libc's or the runtime's): the fiber goes to the back of the ready queue,
/// the hub polls and the others run; returns 1 when it runs again, 0 at once
/// if no fiber was running (the hub, a native thread).
int green_preempt_running(void);
/// From any thread: is a fiber (not the hub, not waiting in libev) running on
/// hub `s`? *switches: its switch count, which stays the same while that one
/// fiber keeps running.
int green_sched_fiber_streak(green_sched *s, uint64_t *switches);
/// From any thread (a relaxed look): has hub `s` fibers waiting for their turn?
int green_sched_has_ready(green_sched *s);

// ---- hand-off: a hub goes on without a thread stuck in a call (handoff.c) ----
//
// `green run` only (green_sched_allow_handoff); elsewhere green_call_enter
// returns NULL and nothing changes. Around a system call that no fiber can
// wait for (a regular file's read or write, fsync, a blocking file lock), the
// shim marks the call; a watcher of the owner's that sees the same call in
// progress twice retakes the hub (green_sched_retake), and a spare OS thread
// of the owner's runs it on (green_sched_claim, green_sched_run_claimed)
// while the call goes on. When the call returns, its thread takes the
// spare's place (stack and TLS) and the fiber waits to be given to a hub
// again (green_fiber_adopt). Only a fiber with TLS of its own (a program's
// thread) is handed off this way: the hub's own TLS goes with the hub.

/// One call in progress: on the calling fiber's stack, from enter to leave.
typedef struct green_call {
    green_sched *sched;        ///< the hub it was made on
    green_fiber *fiber;        ///< the fiber making it
    uint64_t word;             ///< the hub's call word while it is in progress
    void *_Atomic runner_sp;   ///< the spare's own context, saved when it took the hub
    void *runner_tp;           ///< the spare's thread pointer
} green_call;

/// Before a call that may block in the kernel: the hub it may be handed off
/// from, or NULL (nothing to undo: not a fiber thread, or no hand-off here).
/// Until green_call_leave the thread counts as no fiber's for the shim.
green_sched *green_call_enter(green_call *c);
/// After it (errno kept). If the hub was handed off meanwhile, the thread
/// parts from the fiber here, and the fiber returns once a hub runs it.
void green_call_leave(green_call *c);
/// Let hub `s` (the calling thread's) be handed off (x86_64; 0 on success).
int green_sched_allow_handoff(green_sched *s);
/// From any thread: the sequence number of the call in progress on `s`, 0
/// if none. The same number seen twice is the same call.
uint64_t green_sched_call_in_progress(green_sched *s);
/// The watcher: take `s` from its thread if call `seq` is still in progress
/// (1). A spare must then claim it; until one does, the call may still
/// return and keep its hub.
int green_sched_retake(green_sched *s, uint64_t seq);
/// On a spare OS thread: the retaken call of `s`, now this thread's to run
/// the hub for; NULL if the call returned first (the hub stayed its own).
green_call *green_sched_claim(green_sched *s);
/// Run hub `s` (claimed) on this OS thread, with the hub's TLS, saving this
/// context (its stack, thread pointer `runner_tp`). Returns the fiber whose
/// call was handed off once its call has returned, on the thread that made
/// it: that thread runs this context from then on.
green_fiber *green_sched_run_claimed(green_sched *s, green_call *c, void *runner_tp);
/// From any thread: give fiber `f` (handed off, its call over) to hub `to`.
void green_fiber_adopt(green_sched *to, green_fiber *f);

/// On `f`, running: forget what handlers noted for its blocking calls
/// (green_fiber_interrupt_syscall): the call they were for is over.
void green_fiber_forget_interrupt(green_fiber *f);

/// From a signal handler (async-signal-safe): a handler installed with
/// SA_RESTART ran for fiber `f`: only a wait the kernel never restarts
/// (GREEN_PARK_NO_RESTART) fails with EINTR; the others go on.
void green_fiber_restartable_handler_ran(green_fiber *f);

/// From a signal handler (async-signal-safe): run the hub's resume hook on
/// fiber `f` when it next runs — on its own stack, as it returns from a
/// park, a yield or a fair turn; if it is parked in a blocking call of the
/// shim, it is woken for that now. `green run` runs a signal's handler on
/// the thread it is for this way.
void green_fiber_request_resume(green_fiber *f);
/// The hook: returns non-zero when the blocking call the fiber was woken
/// from must fail with EINTR, 0 when it just goes on waiting.
void green_sched_set_resume_hook(green_sched *s, int (*hook)(green_fiber *f));

/// Ask a fiber to stop: its current park (if interruptible) or its next one
/// returns GREEN_WAKE_CANCELLED. Delivered once.
void green_fiber_cancel(green_fiber *f);
bool green_fiber_cancel_requested(const green_fiber *f);

/// The current fiber was woken by an interruption (cancellation or timeout
/// scope) but its operation completed anyway: keep the interruption pending
/// for its next park instead of losing it.
void green_rearm_interrupt(int reason);

/// Wait until `f` is done (returns immediately if it is).
int green_fiber_join(green_fiber *f, int64_t deadline, int flags);

// ---- parking ------------------------------------------------------------

/// Let every other ready fiber run once, then continue. Returns a wake
/// reason: non-zero if a cancellation or timeout scope was pending.
int green_yield(void);
/// Park the current fiber until green_wake(), its deadline, or (unless
/// uninterruptible) cancellation / a timeout scope. The caller arranges who
/// wakes it.
int green_park_until(int64_t deadline, int flags);
/// Make a parked fiber ready again. No-op if it is not parked.
void green_wake(green_fiber *f, int reason);

/// A wake-up for a parked fiber that may come from another thread or from a
/// signal handler. It lives in the waiter's memory (e.g. on its stack) until
/// `delivered` is set; the waiter must not return before that.
typedef struct green_remote_wake {
    green_fiber *fiber;
    struct green_remote_wake *next;
    volatile int delivered; ///< set on the fiber's hub thread just before the fiber is woken
} green_remote_wake;

/// Thread-safe and async-signal-safe: hand `w` to its fiber's hub (a lock-free
/// push and an ev_async), which wakes the fiber with GREEN_WAKE_NORMAL.
void green_wake_remote(green_remote_wake *w);
/// Wake w's fiber now if it belongs to the calling thread's hub (and mark w
/// delivered), else as green_wake_remote. Not for signal handlers. Returns
/// true if the wake was sent to another thread.
bool green_wake_from_anywhere(green_remote_wake *w);

/// Park on a wait queue; on any non-normal return the fiber has left it.
int green_waitq_park(green_waitq *q, int64_t deadline, int flags);
/// Wake the first fiber still parked on q; false if there was none.
bool green_waitq_wake_one(green_waitq *q);
/// Wake every fiber on q; returns how many.
size_t green_waitq_wake_all(green_waitq *q);
bool green_waitq_is_empty(const green_waitq *q);

// ---- waits on libev -----------------------------------------------------

enum { GREEN_READ = 1, GREEN_WRITE = 2 }; ///< same values as EV_READ / EV_WRITE

/// Wait flags (with the park flags) for green_wait_fd on a socket whose
/// caller drained it and calls again once woken, whatever woke it. The hub
/// may then serve the wait from its edge-triggered epoll set, where the
/// socket stays registered between waits (fd_waits.c, edge_poller.c): a
/// spurious wake-up is possible, a missed one is not.
enum {
    /// Its call said EAGAIN.
    GREEN_WAIT_DRAINED = 0x40,
    /// A read of a TCP stream came back short, which empties its receive
    /// queue (unless it stopped at urgent data: the hub then returns at once).
    GREEN_WAIT_SHORT_READ = 0x20,
};

/// Park until fd is readable/writable (events), the deadline passes, or an
/// interruption. *revents receives the events that fired.
int green_wait_fd(int fd, int events, int64_t deadline, int flags, int *revents);
/// Park until any of `n` fds is ready for its events (GREEN_READ/WRITE),
/// the deadline, or an interruption. The caller re-checks readiness itself
/// (e.g. with a zero-timeout poll) to get the kernel's exact answer.
int green_wait_fds(const int *fds, const int *events, int n, int64_t deadline, int flags);
/// The fd is about to be closed (close, dup2 onto it, fclose…): stop every
/// watcher this hub has on it and wake the fibers waiting there with
/// GREEN_WAKE_FD_CLOSED, so the number can be reused safely once close()
/// returns. Every hub registers the number with its kernel epoll set anew
/// at its next wait. Call from any thread, hub or not, then green_fd_closed.
void green_fd_closing(int fd);
/// The close that green_fd_closing announced returned (whatever it returned).
void green_fd_closed(int fd);
/// The kernel changed what a write on fd does without an event epoll
/// reports (shutdown(SHUT_WR) of an AF_UNIX socket: a blocked write fails
/// with EPIPE, but unix_poll says nothing): the fibers of every hub waiting
/// to write on the file fd names now try their calls again (not waits on
/// a file that takes the number later, nor on another number of the same
/// file, a dup). Call from any thread, hub or not; from a signal handler
/// only the caller's hub and those of its sharing group hear of it.
void green_fd_retry_writers(int fd);
/// dup2/dup3 onto fd, which may fail and leave fd's file as it is: no hub
/// trusts its registration of fd from green_fd_replacing on; this hub's
/// waiters on fd are woken (as by green_fd_closing) only when `replaced`.
void green_fd_replacing(int fd);
void green_fd_replaced(int fd, bool replaced);
/// green_fd_closing / green_fd_closed for every number in [first, last]
/// (close_range, closefrom).
void green_fd_closing_range(unsigned first, unsigned last);
void green_fd_closed_range(unsigned first, unsigned last);
/// A new file under fd's number, made through an interposer (socket,
/// socketpair, accept, dup): its word moves, so a close of the number that
/// no interposer saw (libc's own raw syscall) cannot leave a hub trusting
/// what it registered for the file before.
void green_fd_opened(int fd);
/// A word that changes whenever fd's number is closed (while a close is in
/// progress: false). Equal words from two calls: the same file is behind the
/// number, as far as the closes green_fd_closing saw can tell.
bool green_fd_generation(int fd, uint64_t *word);
/// For green-bench: `round_trips` round trips between two bare contexts
/// (the assembly switch alone, with no scheduler: the floor under every
/// fiber switch). 0, or -1 without memory for the second context's stack.
int green_switch_floor(long round_trips);
/// The same with both contexts switching from one call site, so that the
/// CPU predicts every return into the other stack: the switch alone.
int green_switch_floor_one_site(long round_trips);
/// The same with a switch that leaves MXCSR and the x87 control word alone
/// (what per-fiber floating-point control state costs); -1 off x86_64.
int green_switch_floor_without_fp(long round_trips);
/// For green-bench: `count` fibers with an empty body spawned and joined one
/// at a time with the C core alone, on the calling thread's hub (a fiber or
/// its root context). 0, or -1 when a spawn failed.
int green_spawn_join_floor(long count);
/// For green-bench: `count` bare fibers spawned and joined one at a time:
/// a pooled stack, a first frame, a switch in and one back, and nothing of
/// the scheduler or a thread's state (the floor under any stackful spawn).
/// 0, or -1 without memory for the stacks.
int green_spawn_join_bare_floor(long count);
/// Park until the monotonic deadline (never returns early). 0 when slept.
int green_sleep_until(int64_t deadline, int flags);

// ---- timeout scopes -----------------------------------------------------

/// Start a timeout scope for the current fiber. Scopes nest; stop them in
/// reverse order. When one expires while the fiber is parked (or at its next
/// park) the park returns GREEN_WAKE_TIMEOUT_SCOPE.
green_timeout *green_timeout_start(int64_t deadline);
/// Stop the scope and free it. Returns true if it had expired.
bool green_timeout_stop(green_timeout *t);
/// Whether the scope expired and no park has reported it yet (e.g. its
/// interruption was swallowed and re-armed by a for-in over a channel).
bool green_timeout_unreported(const green_timeout *t);
/// The scope whose expiry the last GREEN_WAKE_TIMEOUT_SCOPE reported.
green_timeout *green_fiber_expired_timeout(const green_fiber *f);

// ---- signals --------------------------------------------------------------

typedef struct green_signal_watch green_signal_watch;
/// Call `cb(ctx)` on this thread's hub fiber each time `signum` arrives
/// (libev's signal watcher: the handler itself only wakes the loop). The
/// watch does not keep waits alive (no deadlock masking). NULL on error.
green_signal_watch *green_signal_watch_start(int signum, void (*cb)(void *ctx), void *ctx);
/// Stop watching and free the watch (hub thread only).
void green_signal_watch_stop(green_signal_watch *w);

// ---- blocking monitor -----------------------------------------------------

/// Start (or retune) the blocking monitor: a watchdog thread that notices a
/// hub with live fibers that has not switched for `threshold_ns` while not
/// waiting in its loop — a fiber is running without ever parking, or is
/// stuck in a call the shim cannot see — and prints, to stderr, the hub's
/// thread, the running fiber's name, and that thread's backtrace.
/// Returns 0, or an errno value.
int green_monitor_start(int64_t threshold_ns);
/// How many stalls the monitor has reported so far.
uint64_t green_monitor_reports(void);
/// The fiber dump on a signal, printed by the monitor's own OS thread (started
/// here if need be): the handler for `signum` only wakes that thread, which
/// reads every hub's fibers and prints them to stderr. So it prints while a
/// fiber spins and the hub never runs, and when the hub's thread blocks the
/// signal. Start it before a hub exists under the preload library (its
/// pthread_create must make an OS thread). Returns 0, or an errno value.
int green_dump_on_signal(int signum);
/// Print every hub's fibers to stderr, from any thread, reading them while
/// they run (safely: see monitor.c). The dump that green_dump_on_signal and
/// the blocking monitor print.
void green_dump_all_hubs(void);

// ---- Swift exclusivity --------------------------------------------------

/// Whether the Swift runtime's per-task exclusivity hooks were found (they are
/// called on every switch so each fiber has its own access set).
bool green_exclusivity_hooks_available(void);
/// Whether this thread switches access sets through the probed TLS slot
/// (true) or through the runtime's two calls (false).
bool green_exclusivity_fast_path(void);

#if !defined(__swift__)
#include <stdarg.h>
GREEN_HIDDEN_BEGIN
/// Write "green[PID]: " and the formatted line to stderr in one write(2),
/// bypassing stdio and the shim's write (not async-signal-safe: it formats).
/// For the library's own C code (the monitor, the preload's debug log).
void green_vlog(const char *fmt, va_list ap);
GREEN_HIDDEN_END
#endif

#ifdef __cplusplus
}
#endif
#endif
