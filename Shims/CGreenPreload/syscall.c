// syscall.c — syscall(): what a program does through it, it does as if it had
// called the function by name. Rust's std::sync, libstdc++'s atomic waits
// and many C libraries call syscall(SYS_futex, …) directly: on a fiber
// thread those waits park the fiber on the green futex, and wakes reach
// fibers and threads alike. gettid, tgkill and the calls the shim interposes
// (read, write, poll, nanosleep…) reach the same interposers as by name.
// Every other number goes to libc's syscall() unchanged.
#include "preload.h"
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

// ---- futex -----------------------------------------------------------------------

/// FUTEX_WAIT (relative timeout) and FUTEX_WAIT_BITSET (absolute).
static long futex_wait_op(uint32_t *word, int op, uint32_t expected, const struct timespec *timeout, uint32_t bitset) {
    int cmd = op & FUTEX_CMD_MASK;
    if (((uintptr_t)word & 3) || !bitset) return fail(EINVAL);
    if (timeout && (!timespec_ok(timeout) || timeout->tv_sec < 0)) return fail(EINVAL);
    if (!green_on_fiber()) return gfutex_kernel_wait_raw(word, op, expected, timeout, bitset);

    // The kernel reads the word for us, without waiting: EFAULT for an address
    // the program may not read, EAGAIN when it no longer holds `expected`.
    // (A compare-and-requeue of nobody onto itself.)
    int private_flag = op & FUTEX_PRIVATE_FLAG;
    if (GREEN_SYSCALL(SYS_futex, word, FUTEX_CMP_REQUEUE | private_flag, 0, 0, word, expected) < 0) return -1;

    clockid_t clock = (op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    struct timespec until;
    const struct timespec *abstime = timeout;
    if (timeout && cmd == FUTEX_WAIT) { // relative: a deadline on the monotonic clock
        until = green_ns_timespec(green_deadline_in(green_timespec_ns(timeout)));
        clock = CLOCK_MONOTONIC;
        abstime = &until;
    }
    int flags = private_flag ? 0 : GF_SHARED;
    int r = gfutex_wait_bitset(word, expected, clock, abstime, flags, bitset, "futex");
    return r ? fail(r) : 0;
}

/// The green futex's wake for fibers, then the kernel's for everyone else.
static long futex_call(uint32_t *word, int op, uint32_t val, const struct timespec *timeout, uint32_t *word2,
                       uint32_t val3) {
    int cmd = op & FUTEX_CMD_MASK;
    int flags = (op & FUTEX_PRIVATE_FLAG) ? 0 : GF_SHARED;
    switch (cmd) {
    case FUTEX_WAIT:
        return futex_wait_op(word, op, val, timeout, FUTEX_BITSET_MATCH_ANY);
    case FUTEX_WAIT_BITSET:
        return futex_wait_op(word, op, val, timeout, val3);
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
        uint32_t bitset = cmd == FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY : val3;
        if (((uintptr_t)word & 3) || !bitset) return fail(EINVAL);
        return gfutex_wake_bitset(word, (int)val > 0 ? (int)val : 0, bitset, flags);
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE:
    case FUTEX_WAKE_OP: {
        // The kernel does the operation for the threads waiting in it; fibers
        // waiting on these words are woken instead of moved (a spurious
        // wake-up, which every futex user must handle), never left behind.
        long r = GREEN_SYSCALL(SYS_futex, word, op, val, timeout, word2, val3);
        if (r < 0) return r;
        int second = (int)(intptr_t)timeout; // val2: how many to requeue, or to wake on word2
        if (cmd == FUTEX_WAKE_OP) {
            r += gfutex_wake_bitset(word, (int)val, FUTEX_BITSET_MATCH_ANY, flags | GF_FIBERS_ONLY);
            r += gfutex_wake_bitset(word2, second, FUTEX_BITSET_MATCH_ANY, flags | GF_FIBERS_ONLY);
        } else {
            long more = (long)val + second;
            r += gfutex_wake_bitset(word, more > INT_MAX ? INT_MAX : (int)more, FUTEX_BITSET_MATCH_ANY,
                                    flags | GF_FIBERS_ONLY);
        }
        return r;
    }
    default: // priority inheritance and the rest: the kernel's, for the OS thread
        return GREEN_SYSCALL(SYS_futex, word, op, val, timeout, word2, val3);
    }
}

// ---- syscall() ---------------------------------------------------------------------

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
        return futex_call((uint32_t *)a0, (int)a1, (uint32_t)a2, (const struct timespec *)a3, (uint32_t *)a4,
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
        pid_t tid = preload_kernel_tid((pid_t)a0);
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
    case SYS_accept:
        return accept((int)a0, (struct sockaddr *)a1, (socklen_t *)a2);
    case SYS_accept4:
        return accept4((int)a0, (struct sockaddr *)a1, (socklen_t *)a2, (int)a3);
    case SYS_connect:
        return connect((int)a0, (const struct sockaddr *)a1, (socklen_t)a2);
    case SYS_close:
        return close((int)a0);
    case SYS_dup:
        return dup((int)a0);
    case SYS_dup2:
        return dup2((int)a0, (int)a1);
    case SYS_dup3:
        return dup3((int)a0, (int)a1, (int)a2);
    case SYS_fcntl:
        return fcntl((int)a0, (int)a1, a2);
    case SYS_poll:
        return poll((struct pollfd *)a0, (nfds_t)a1, (int)a2);
    case SYS_ppoll: // the kernel's mask argument has a size; libc's ppoll takes the set
        return ppoll((struct pollfd *)a0, (nfds_t)a1, (const struct timespec *)a2, (const sigset_t *)a3);
    case SYS_select:
        return select((int)a0, (fd_set *)a1, (fd_set *)a2, (fd_set *)a3, (struct timeval *)a4);
    case SYS_pselect6: {
        const struct pselect6_mask *m = (const struct pselect6_mask *)a5;
        return pselect((int)a0, (fd_set *)a1, (fd_set *)a2, (fd_set *)a3, (const struct timespec *)a4,
                       m ? m->set : NULL);
    }
    case SYS_epoll_wait:
        return epoll_wait((int)a0, (struct epoll_event *)a1, (int)a2, (int)a3);
    case SYS_epoll_pwait:
        return epoll_pwait((int)a0, (struct epoll_event *)a1, (int)a2, (int)a3, (const sigset_t *)a4);
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
    case SYS_pipe:
        return pipe((int *)a0);
    case SYS_fstat:
        return fstat((int)a0, (struct stat *)a1);
    case SYS_ioctl:
        return ioctl((int)a0, (unsigned long)a1, a2);
    case SYS_setsockopt:
        return setsockopt((int)a0, (int)a1, (int)a2, (const void *)a3, (socklen_t)a4);
    default:
        return GREEN_SYSCALL(number, a0, a1, a2, a3, a4, a5);
    }
}
