// user_memory.c — the program's memory read or written as the kernel would:
// a bad pointer is EFAULT, where a plain access in the shim would crash.
// For the few interposers that must look at memory before any system call
// has (a timeout, a signal mask, an fd set, a readv's iovec array): memory
// on the running fiber's own stack is copied directly, anything else
// through process_vm_readv/writev.
#include "shim.h"
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/// Whether [p, p + n) lies on the running fiber's own stack, which is
/// mapped readable and writable from its lowest address (the guard is
/// below it) to its top: the common place of a timeout, a signal mask or
/// an iovec array, copied then without a system call.
static int on_own_stack(const void *p, size_t n) {
    green_fiber *f = green_parkable_fiber();
    if (!f) return 0;
    void *lo, *hi;
    green_fiber_stack_bounds(f, &lo, &hi);
    uintptr_t a = (uintptr_t)p;
    return lo && a >= (uintptr_t)lo && a <= (uintptr_t)hi && n <= (uintptr_t)hi - a;
}

/// process_vm_readv/writev on the own pid; where it does not exist
/// (qemu-user, a seccomp filter: ENOSYS, EPERM) a plain copy, as before.
static int copy_vectors(int out, const struct iovec *here, const struct iovec *there, int n) {
    size_t want = 0;
    int own = 1;
    for (int i = 0; i < n; i++) {
        want += there[i].iov_len;
        own = own && on_own_stack(there[i].iov_base, there[i].iov_len);
    }
    if (!want) return 0;
    if (own) {
        for (int i = 0; i < n; i++) {
            if (out) memcpy(there[i].iov_base, here[i].iov_base, there[i].iov_len);
            else memcpy(here[i].iov_base, there[i].iov_base, there[i].iov_len);
        }
        return 0;
    }
    int err = errno;
    // Every argument a long: syscall() reads six of them.
    long r = GREEN_SYSCALL(out ? SYS_process_vm_writev : SYS_process_vm_readv, (long)getpid(), (long)here, (long)n,
                           (long)there, (long)n, 0L);
    if (r == (long)want) {
        errno = err;
        return 0;
    }
    if (r < 0 && (errno == ENOSYS || errno == EPERM)) {
        for (int i = 0; i < n; i++) // (the first page at least is known bad without the kernel)
            if ((uintptr_t)there[i].iov_base < 4096 && there[i].iov_len) { errno = EFAULT; return -1; }
        for (int i = 0; i < n; i++) {
            if (out) memcpy(there[i].iov_base, here[i].iov_base, there[i].iov_len);
            else memcpy(here[i].iov_base, there[i].iov_base, there[i].iov_len);
        }
        errno = err;
        return 0;
    }
    errno = EFAULT; // a partial copy stopped at an unreadable (unwritable) page
    return -1;
}

int shim_copy_in(void *dst, const void *src, size_t n) {
    struct iovec here = {dst, n}, there = {(void *)src, n};
    return copy_vectors(0, &here, &there, 1);
}

int shim_copy_in_v(const struct iovec *here, const struct iovec *there, int n) {
    return copy_vectors(0, here, there, n);
}

int shim_copy_out(void *dst, const void *src, size_t n) {
    struct iovec here = {(void *)src, n}, there = {dst, n};
    return copy_vectors(1, &here, &there, 1);
}

int shim_copy_sigset(sigset_t *dst, const sigset_t *src) {
    sigemptyset(dst);
    return shim_copy_in(dst, src, SHIM_KERNEL_SIGSET);
}
