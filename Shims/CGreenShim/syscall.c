// syscall.c — syscall(): what a program does through it, it does as if it had
// called the function by name. Rust's std::sync, libstdc++'s atomic waits,
// Dispatch, Foundation, Swift's Synchronization.Mutex and many C libraries
// call syscall(SYS_futex, …) directly: on a fiber those waits park it on the
// green futex (sync/futex_syscall.c), and wakes reach fibers and threads
// alike. gettid, tgkill and the calls the shim interposes
// (read, write, poll, nanosleep…) reach the same interposers as by name.
// Every other number goes to libc's syscall() unchanged.
#include "sync/sync.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static long fail(int err) {
    errno = err;
    return -1;
}

// ---- syscall() ---------------------------------------------------------------------

/// The time left, written back into a raw select, pselect6 or ppoll's
/// timeout as the kernel writes it: not for a zero timeout, and a write the
/// program's memory refuses is ignored (a timeout in read-only memory).
static void write_time_left(void *user, const void *left, size_t size, int was_zero) {
    if (!user || was_zero) return;
    int e = errno;
    (void)shim_copy_out(user, left, size);
    errno = e;
}

/// timespec `ts` from now, and back: the time left until then, at least 0.
static int64_t end_of(const struct timespec *ts) { return green_deadline_in(green_timespec_ns(ts)); }
static struct timespec left_until(int64_t end) { return green_ns_timespec(green_ns_until(end)); }

#ifdef SYS_select
/// select(2) itself: the kernel reads the timeout (EFAULT for a bad one,
/// where libc's select reads it in the program) and writes the time left.
static long raw_select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv) {
    struct timeval t;
    if (tv && shim_copy_in(&t, tv, sizeof t) != 0) return -1;
    int zero = tv && t.tv_sec == 0 && t.tv_usec == 0;
    int res = select(nfds, r, w, x, tv ? &t : NULL); // writes the time left into t
    write_time_left(tv, &t, sizeof t, zero);
    return res;
}
#endif

/// pselect6's last argument: the signal mask and its size.
struct pselect6_mask {
    const sigset_t *set;
    size_t size;
};

GREEN_EXPORT long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a0 = va_arg(ap, long), a1 = va_arg(ap, long), a2 = va_arg(ap, long);
    long a3 = va_arg(ap, long), a4 = va_arg(ap, long), a5 = va_arg(ap, long);
    va_end(ap);
    switch (number) {
    case SYS_futex:
        return shim_futex_syscall((uint32_t *)a0, (int)a1, (uint32_t)a2, (const struct timespec *)a3, (uint32_t *)a4,
                          (uint32_t)a5);
    case SYS_gettid:
        return gettid();
    case SYS_tgkill:
        return tgkill((pid_t)a0, (pid_t)a1, (int)a2);
    case SYS_sched_yield:
        return sched_yield();
    case SYS_sched_setaffinity:
        return sched_setaffinity((pid_t)a0, (size_t)a1, (const cpu_set_t *)a2);
    case SYS_sched_getaffinity: {
        // The system call returns the mask's size in bytes; the libc function 0.
        const shim_pthread_hooks *h = shim_pthreads;
        pid_t tid = h ? h->kernel_tid((pid_t)a0) : (pid_t)a0;
        if (tid < 0) return fail(ESRCH);
        return GREEN_SYSCALL(SYS_sched_getaffinity, (long)tid, a1, a2);
    }
    case SYS_read:
        return read((int)a0, (void *)a1, (size_t)a2);
    case SYS_write:
        return write((int)a0, (const void *)a1, (size_t)a2);
    case SYS_readv:
        return readv((int)a0, (const struct iovec *)a1, (int)a2);
    case SYS_writev:
        return writev((int)a0, (const struct iovec *)a1, (int)a2);
    case SYS_recvfrom:
        return recvfrom((int)a0, (void *)a1, (size_t)a2, (int)a3, (struct sockaddr *)a4, (socklen_t *)a5);
    case SYS_sendto:
        return sendto((int)a0, (const void *)a1, (size_t)a2, (int)a3, (const struct sockaddr *)a4, (socklen_t)a5);
    case SYS_recvmsg:
        return recvmsg((int)a0, (struct msghdr *)a1, (int)a2);
    case SYS_sendmsg:
        return sendmsg((int)a0, (const struct msghdr *)a1, (int)a2);
    case SYS_recvmmsg:
        return recvmmsg((int)a0, (struct mmsghdr *)a1, (unsigned)a2, (int)a3, (struct timespec *)a4);
    case SYS_sendmmsg:
        return sendmmsg((int)a0, (struct mmsghdr *)a1, (unsigned)a2, (int)a3);
    case SYS_sendfile:
        return sendfile((int)a0, (int)a1, (off_t *)a2, (size_t)a3);
    case SYS_splice:
        return splice((int)a0, (loff_t *)a1, (int)a2, (loff_t *)a3, (size_t)a4, (unsigned)a5);
    case SYS_accept:
        return accept((int)a0, (struct sockaddr *)a1, (socklen_t *)a2);
    case SYS_accept4:
        return accept4((int)a0, (struct sockaddr *)a1, (socklen_t *)a2, (int)a3);
    case SYS_connect:
        return connect((int)a0, (const struct sockaddr *)a1, (socklen_t)a2);
    case SYS_close:
        return close((int)a0);
    case SYS_close_range:
        return close_range((unsigned)a0, (unsigned)a1, (int)a2);
    case SYS_dup:
        return dup((int)a0);
#ifdef SYS_dup2 // x86_64 has it; aarch64 has only the newer call
    case SYS_dup2:
        return dup2((int)a0, (int)a1);
#endif
    case SYS_dup3:
        return dup3((int)a0, (int)a1, (int)a2);
    case SYS_fcntl:
        return fcntl((int)a0, (int)a1, a2);
#ifdef SYS_poll // x86_64 has it; aarch64 has only the newer call
    case SYS_poll:
        return poll((struct pollfd *)a0, (nfds_t)a1, (int)a2);
#endif
    case SYS_ppoll: { // the kernel's mask argument has a size; libc's ppoll takes the set
        // The system call reads the timeout itself (libc's ppoll copies it):
        // a bad one is EFAULT, then a mask of another size EINVAL.
        struct timespec ts;
        if (a2 && shim_copy_in(&ts, (const void *)a2, sizeof ts) != 0) return -1;
        if (a3 && a4 != SHIM_KERNEL_SIGSET) return fail(EINVAL);
        int64_t end = a2 && green_timespec_valid(&ts) ? end_of(&ts) : 0;
        long r = ppoll((struct pollfd *)a0, (nfds_t)a1, a2 ? &ts : NULL, (const sigset_t *)a3);
        if (end) {
            struct timespec left = left_until(end);
            write_time_left((void *)a2, &left, sizeof left, ts.tv_sec == 0 && ts.tv_nsec == 0);
        }
        return r;
    }
#ifdef SYS_select // x86_64 has it; aarch64 has only the newer call
    case SYS_select:
        return raw_select((int)a0, (fd_set *)a1, (fd_set *)a2, (fd_set *)a3, (struct timeval *)a4);
#endif
    case SYS_pselect6: {
        // What libc's pselect reads itself, the system call reads as the
        // kernel does: the mask's pair first, the timeout, the mask's size.
        struct pselect6_mask m = {NULL, 0};
        struct timespec ts;
        if (a5 && shim_copy_in(&m, (const void *)a5, sizeof m) != 0) return -1;
        if (a4 && shim_copy_in(&ts, (const void *)a4, sizeof ts) != 0) return -1;
        if (m.set && m.size != SHIM_KERNEL_SIGSET) return fail(EINVAL);
        int64_t end = a4 && green_timespec_valid(&ts) ? end_of(&ts) : 0;
        long r = pselect((int)a0, (fd_set *)a1, (fd_set *)a2, (fd_set *)a3, a4 ? &ts : NULL, m.set);
        if (end) {
            struct timespec left = left_until(end);
            write_time_left((void *)a4, &left, sizeof left, ts.tv_sec == 0 && ts.tv_nsec == 0);
        }
        return r;
    }
#ifdef SYS_epoll_wait // x86_64 has it; aarch64 has only the newer call
    case SYS_epoll_wait:
        return epoll_wait((int)a0, (struct epoll_event *)a1, (int)a2, (int)a3);
#endif
    case SYS_epoll_pwait:
        if (a4 && a5 != SHIM_KERNEL_SIGSET) return fail(EINVAL);
        return epoll_pwait((int)a0, (struct epoll_event *)a1, (int)a2, (int)a3, (const sigset_t *)a4);
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2: { // the timeout first, then the mask's size, as the kernel
        struct timespec ts;
        if (a3 && shim_copy_in(&ts, (const void *)a3, sizeof ts) != 0) return -1;
        if (a4 && a5 != SHIM_KERNEL_SIGSET) return fail(EINVAL);
        return epoll_pwait2((int)a0, (struct epoll_event *)a1, (int)a2, a3 ? &ts : NULL, (const sigset_t *)a4);
    }
#endif
    case SYS_nanosleep:
        return nanosleep((const struct timespec *)a0, (struct timespec *)a1);
    case SYS_clock_nanosleep: { // libc's returns the error number; the system call -1 and errno
        int r = clock_nanosleep((clockid_t)a0, (int)a1, (const struct timespec *)a2, (struct timespec *)a3);
        return r ? fail(r) : 0;
    }
    case SYS_wait4:
        return wait4((pid_t)a0, (int *)a1, (int)a2, (struct rusage *)a3);
    case SYS_socket:
        return socket((int)a0, (int)a1, (int)a2);
    case SYS_socketpair:
        return socketpair((int)a0, (int)a1, (int)a2, (int *)a3);
    case SYS_pipe2:
        return pipe2((int *)a0, (int)a1);
#ifdef SYS_pipe // x86_64 has it; aarch64 has only the newer call
    case SYS_pipe:
        return pipe((int *)a0);
#endif
    case SYS_fstat:
        return fstat((int)a0, (struct stat *)a1);
    case SYS_ioctl:
        return ioctl((int)a0, (unsigned long)a1, a2);
    case SYS_setsockopt:
        return setsockopt((int)a0, (int)a1, (int)a2, (const void *)a3, (socklen_t)a4);
    case SYS_execve: // the interposers' steps: sockets' flags, the caller's mask, preemption held
        return execve((const char *)a0, (char *const *)a1, (char *const *)a2);
    case SYS_execveat:
        return execveat((int)a0, (const char *)a1, (char *const *)a2, (char *const *)a3, (int)a4);
    case SYS_clone:
    case SYS_clone3:
#ifdef SYS_vfork
    case SYS_vfork:
#endif
    case SYS_exit:
    case SYS_exit_group: // a child sharing this memory, or no return: never marked
        return GREEN_SYSCALL(number, a0, a1, a2, a3, a4, a5);
    default: // a call the shim knows nothing of: it may block
        return SHIM_BLOCKING_CALL(GREEN_SYSCALL(number, a0, a1, a2, a3, a4, a5));
    }
}
