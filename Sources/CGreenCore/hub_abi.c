// hub_abi.c — the table through which the shim parks the current fiber.
// The shim's waits are blocking system calls to the program: a signal
// handler interrupts them (green_sched_interrupt_syscalls).
#include "internal.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// ---- hub ABI -----------------------------------------------------------------------

static const green_hub_abi *_Atomic installed_abi;

const green_hub_abi *green_hub_abi_get(void) { return installed_abi; }
void green_hub_abi_install(const green_hub_abi *abi) { installed_abi = abi; }

// Under `green run` the blocking calls are also cancellation points: the
// preload library's hook acts on a pending pthread_cancel before the park and
// after it (it does not return then: the thread unwinds), and its
// pthread_cancel ends such a park with GREEN_WAKE_CANCELLED. A cancellation
// wake-up that the hook let pass (the thread was not to act on it) is no
// result of the call: it parks again.

static void (*_Atomic cancellation_point)(int after);

void green_hub_abi_set_cancellation_point(void (*point)(int after)) { cancellation_point = point; }

#define CANCELLATION_POINT(point, call)                                                            \
    for (;;) {                                                                                     \
        point(0);                                                                                  \
        int r = call;                                                                              \
        point(1);                                                                                  \
        if (r != GREEN_WAKE_CANCELLED) return r;                                                   \
    }

static inline void (*cancellation_point_now(void))(int) {
    return atomic_load_explicit(&cancellation_point, memory_order_relaxed);
}

// Each wait is a blocking system call to the program (GREEN_PARK_SYSCALL):
// a signal handler for its thread interrupts it. Without a cancellation
// point (a Swift program that links Green) each entry is a tail call, with
// no frame of its own: every read or write that parks comes this way.

__attribute__((noinline)) static int wait_fd_cancellable(void (*point)(int), int fd, int events, int64_t deadline,
                                                         int *revents, int flags) {
    CANCELLATION_POINT(point, green_wait_fd(fd, events, deadline, flags, revents))
}

int green_hub_wait_fd(int fd, int events, int64_t deadline, int flags, int *revents) {
    void (*point)(int) = cancellation_point_now();
    if (!point) return green_wait_fd(fd, events, deadline, flags | GREEN_PARK_SYSCALL, revents);
    return wait_fd_cancellable(point, fd, events, deadline, revents, flags | GREEN_PARK_SYSCALL);
}

/// The table's order of arguments.
static int abi_wait_fd(int fd, int events, int64_t deadline, int *revents, int flags) {
    return green_hub_wait_fd(fd, events, deadline, flags, revents);
}

static int abi_sleep_until(int64_t deadline, int flags) {
    void (*point)(int) = cancellation_point_now();
    if (!point) return green_sleep_until(deadline, flags | GREEN_PARK_SYSCALL);
    CANCELLATION_POINT(point, green_sleep_until(deadline, flags | GREEN_PARK_SYSCALL))
}

// poll, select and epoll_wait: never restarted after a handler.
static int abi_wait_fds(const int *fds, const int *events, int n, int64_t deadline) {
    void (*point)(int) = cancellation_point_now();
    if (!point) return green_wait_fds(fds, events, n, deadline, GREEN_PARK_NO_RESTART | GREEN_PARK_SYSCALL);
    CANCELLATION_POINT(point, green_wait_fds(fds, events, n, deadline, GREEN_PARK_NO_RESTART | GREEN_PARK_SYSCALL))
}

const green_hub_abi *green_hub_abi_make(int (*run_blocking)(void (*)(void *), void *)) {
    static green_hub_abi table;
    table.version = GREEN_HUB_ABI_VERSION;
    table.wait_fd = abi_wait_fd;
    table.sleep_until = abi_sleep_until;
    table.run_blocking = run_blocking;
    table.fd_closing = green_fd_closing;
    table.wait_fds = abi_wait_fds;
    return &table;
}
