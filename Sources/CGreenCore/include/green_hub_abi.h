// green_hub_abi.h — the hub ABI: the small table through which C code (the
// interposition shim) parks the current fiber. The Swift runtime fills it in
// when a hub starts on a thread; C code never imports Swift.
#ifndef GREEN_HUB_ABI_H
#define GREEN_HUB_ABI_H

#include <stdint.h>
#include "green_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GREEN_HUB_ABI_VERSION 3

typedef struct green_hub_abi {
    int version; ///< GREEN_HUB_ABI_VERSION
    /// Park until fd is ready for `events` (GREEN_READ/GREEN_WRITE) or the
    /// monotonic deadline; returns a green_wake_reason, *revents the events.
    /// `flags`: GREEN_PARK_NO_RESTART for the waits the kernel never restarts
    /// (a socket's SO_RCVTIMEO/SO_SNDTIMEO, sigtimedwait).
    int (*wait_fd)(int fd, int events, int64_t deadline, int *revents, int flags);
    /// Park until the monotonic deadline; returns a green_wake_reason (0: slept).
    /// `flags`: GREEN_PARK_NO_RESTART for the sleeps the kernel never restarts.
    int (*sleep_until)(int64_t deadline, int flags);
    /// Run fn(arg) on the hub's thread pool, parking (uninterruptibly) until
    /// it has returned. Returns 0, or -1 if no thread could run it.
    int (*run_blocking)(void (*fn)(void *arg), void *arg);
    /// Before closing fd: wake its waiters on this thread's hub (EBADF for them).
    void (*fd_closing)(int fd);
    /// Park until any of n fds is ready (see green_wait_fds). Like poll, a
    /// handler for the thread ends it, SA_RESTART or not.
    int (*wait_fds)(const int *fds, const int *events, int n, int64_t deadline);
} green_hub_abi;

/// The installed table, or NULL before any hub started.
const green_hub_abi *green_hub_abi_get(void);
/// Called by the runtime; the table must stay valid for the process' life.
void green_hub_abi_install(const green_hub_abi *abi);
/// The core's table: its own fd and sleep waits plus the runtime's thread
/// pool entry. Static storage; call once.
const green_hub_abi *green_hub_abi_make(int (*run_blocking)(void (*fn)(void *arg), void *arg));

/// Make the table's waits cancellation points (`green run`'s pthread_cancel):
/// `point(0)` is called before each park, `point(1)` after it, on the
/// parking fiber; either may not return (the thread is cancelled and
/// unwinds). A park that ends with GREEN_WAKE_CANCELLED and after which
/// `point(1)` returns parks again instead of returning that to the caller.
void green_hub_abi_set_cancellation_point(void (*point)(int after));

/// "Am I on a fiber that may park?" — the shim's fast check. Non-NULL when
/// this thread has a hub and the running context is a fiber (or the root
/// context), not the hub itself.
green_fiber *green_parkable_fiber(void);

/// Fairness for calls that complete without parking (a poll that always finds
/// a ready fd, a read that always has bytes): call on entry to such a call on
/// a fiber. After a streak of them with no switch on this hub, the caller
/// yields once so that the other ready fibers, timers and I/O get their turn;
/// what the call then returns is unchanged. A thread-local count otherwise
/// (C callers inline it: green_fair_check).
/// Safe anywhere: off a fiber (a native thread, the hub) it does nothing.
void green_fair_turn(void);

#if !defined(__swift__)
GREEN_HIDDEN_BEGIN // the C fast path's thread-locals: the library's own
/// Non-zero while the core creates or closes its own fds (libev's epoll fd
/// and wake-up eventfd, also when a fork child recreates them): the shim
/// moves new ones out of the program's low numbers, close-on-exec, and lets
/// only the core close them.
extern __thread int green_tls_making_internal_fds __attribute__((tls_model("initial-exec")));
/// Non-zero while a program's signal handler runs on this thread (the
/// preload's wrapper counts it): a close made there must not touch the
/// hub's fd-wait lists or its libev loop, which the code it interrupted
/// may be changing; it tells the hub instead (green_fd_closing).
extern __thread int green_tls_in_signal_handler __attribute__((tls_model("initial-exec")));

/// libc's syscall(), never an interposer of it: the library's own raw system
/// calls go through GREEN_SYSCALL. Resolved at the first call (a hub's start
/// makes one, so signal handlers find it resolved).
long (*green_libc_syscall(void))(long number, ...);
#define GREEN_SYSCALL(...) (green_libc_syscall()(__VA_ARGS__))

/// No Swift code runs on this process' fibers (the preload library: its
/// Swift runtime is linked in only because swiftc links every product with
/// it): switches skip Swift's exclusivity bookkeeping. Call it before the
/// first switch: a thread that switched already keeps its way.
void green_exclusivity_off(void);

/// Run at every fiber switch of any hub, before the next fiber runs, while
/// set; the hook clears it when its work is done (a switch on another hub
/// may come too early for it). `green run`'s dlopen sets it, so that a
/// library loaded with static TLS is in every fiber thread's TLS before
/// another fiber thread can run its code.
extern void (*_Atomic green_next_switch_hook)(void);
/// Called by every hub after another thread (or a signal handler) notified
/// it, before its owner's callback: the shim finishes the futex wakes that
/// signal handlers had to put off. Set once at load.
extern void (*_Atomic green_notify_hook)(void);

/// The table's wait_fd, called directly by the shim (which is always built
/// into the same image as the core): a read or write that parks skips the
/// table's load and indirect call. Its arguments in green_wait_fd's order,
/// which it calls last (a jump).
int green_hub_wait_fd(int fd, int events, int64_t deadline, int flags, int *revents);

/// Calls in a row that may complete without parking before the caller gives
/// the others a turn: a poll that always finds a ready fd costs a system call
/// each time, so 64 of them are tens of microseconds.
#define GREEN_FAIR_CALLS 64
/// Such calls since the last switch on this thread (every switch zeroes it).
extern __thread unsigned green_tls_fair_calls __attribute__((tls_model("initial-exec")));
/// The 64th: yield once (on a fiber that may park; elsewhere only the count
/// starts again).
void green_fair_yield(void);
/// green_fair_turn inline: every read and write on a fiber counts one.
static inline void green_fair_check(void) {
    if (__builtin_expect(++green_tls_fair_calls >= GREEN_FAIR_CALLS, 0)) green_fair_yield();
}

/// The same check as an inline thread-local load, for C callers.
extern __thread green_fiber *green_tls_parkable __attribute__((tls_model("initial-exec")));
static inline int green_on_fiber(void) { return green_tls_parkable != 0; }
/// Where a fiber record keeps its lock-owner id (green_fiber_owner_id; 0
/// until first asked), so that every lock's path reads it without a call.
/// scheduler.c checks it against the record.
#define GREEN_FIBER_OWNER_ID_OFFSET 24
static inline int32_t green_fiber_cached_owner_id(const green_fiber *f) {
    return *(const int32_t *)((const char *)f + GREEN_FIBER_OWNER_ID_OFFSET);
}
GREEN_HIDDEN_END
#endif

#ifdef __cplusplus
}
#endif
#endif
