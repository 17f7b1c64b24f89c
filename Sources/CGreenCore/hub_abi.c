// hub_abi.c — the table through which the shim parks the current fiber.
// The shim's waits are blocking system calls to the program: a signal
// handler interrupts them (green_sched_interrupt_syscalls).
#include "internal.h"
#include <stdlib.h>
#include <string.h>

// ---- hub ABI -----------------------------------------------------------------------

static const green_hub_abi *_Atomic installed_abi;

const green_hub_abi *green_hub_abi_get(void) { return installed_abi; }
void green_hub_abi_install(const green_hub_abi *abi) { installed_abi = abi; }

// The shim's waits are blocking system calls to the program: a signal handler
// interrupts them (green_sched_interrupt_syscalls).

static inline green_fiber *enter_syscall(void) {
    green_fiber *self = green_tls_sched->current;
    self->flags |= FIBER_IN_SYSCALL;
    return self;
}

static inline int leave_syscall(green_fiber *self, int reason) {
    self->flags &= ~FIBER_IN_SYSCALL;
    return reason;
}

static int abi_wait_fd(int fd, int events, int64_t deadline, int *revents) {
    green_fiber *self = enter_syscall();
    return leave_syscall(self, green_wait_fd(fd, events, deadline, 0, revents));
}

static int abi_sleep_until(int64_t deadline) {
    green_fiber *self = enter_syscall();
    return leave_syscall(self, green_sleep_until(deadline, 0));
}

static int abi_wait_fds(const int *fds, const int *events, int n, int64_t deadline) {
    green_fiber *self = enter_syscall();
    return leave_syscall(self, green_wait_fds(fds, events, n, deadline, 0));
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
