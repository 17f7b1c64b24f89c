// user_memory.c — the program's memory read or written as the kernel would:
// a bad pointer is EFAULT, where a plain access in the shim would crash.
// For the few interposers that must look at memory before any system call
// has (a timeout, a signal mask, an fd set), off their hot paths.
#include "shim.h"
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/// process_vm_readv/writev on the own pid; where it does not exist
/// (qemu-user, a seccomp filter: ENOSYS, EPERM) a plain copy, as before.
static int copy_vectors(int out, const struct iovec *here, const struct iovec *there, int n) {
    size_t want = 0;
    for (int i = 0; i < n; i++) want += there[i].iov_len;
    if (!want) return 0;
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
