// sigwait.c — sigwait, sigwaitinfo and sigtimedwait park the fiber until a
// signal of the set is pending, then take it exactly as libc does (the
// kernel picks and consumes it, with its siginfo). A daemon's signal thread
// or dig's main loop waits this way while its other threads keep running.
//
// The wait itself is on a signalfd for the set, which is readable while a
// signal of the set is pending on this thread or the process; it is made
// for the wait and closed after it, also by a thread cancelled in the wait
// (sigwait* are cancellation points).
#include "shim.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

/// The wait is over: no longer waiting, and its signalfd closed (a cleanup
/// handler too: sigwait* are cancellation points).
static void wait_over(void *fd) {
    const shim_thread_hooks *h = shim_threads;
    if (h) h->sigwait_waiting(NULL);
    shim_close_own(*(int *)fd);
}

/// A signal sent to this fiber thread alone in `set`, its siginfo written
/// to `info` as the kernel writes it: -1 with EFAULT (the signal taken) when
/// the program cannot take it.
static int take_mine(const shim_thread_hooks *h, const sigset_t *set, siginfo_t *info) {
    siginfo_t si;
    int mine = h ? h->take_thread_signal(set, &si) : 0;
    if (mine > 0 && info && shim_copy_out(info, &si, sizeof si) != 0) return -1;
    return mine;
}

/// sigtimedwait's contract; `timeout` NULL waits for ever. The set and the
/// timeout are the shim's copies (the kernel's reads: EFAULT, not a crash).
static int wait_for_signal(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
    if (timeout && !green_timespec_valid(timeout)) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline = timeout ? green_deadline_in(green_timespec_ns(timeout)) : GREEN_NO_DEADLINE;
    green_fair_check();
    for (;;) {
        // A signal sent to this fiber thread alone (green run) first, then the kernel's.
        const shim_thread_hooks *h = shim_threads;
        int mine = take_mine(h, set, info);
        if (mine != 0) return mine;
        static const struct timespec now = {0, 0};
        int sig = REAL(sigtimedwait)(set, info, &now);
        if (sig > 0 || errno != EAGAIN) return sig; // taken, or EINTR/EINVAL as libc says
        if (deadline != GREEN_NO_DEADLINE && green_now_ns() >= deadline) {
            errno = EAGAIN;
            return -1;
        }
        int sfd = shim_fd_out_of_the_way(signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC));
        if (sfd < 0) return -1; // EMFILE, ENOMEM: as a failed wait
        int revents = 0, w = GREEN_WAKE_NORMAL;
        pthread_cleanup_push(wait_over, &sfd);
        // One sent to it alone since the first look: taken at the loop's top.
        int pending = h ? h->sigwait_waiting(set) : 0;
        if (!pending) w = hub()->wait_fd(sfd, GREEN_READ, deadline, &revents, GREEN_PARK_NO_RESTART); // never restarted
        pthread_cleanup_pop(1);
        if (w != GREEN_WAKE_NORMAL && w != GREEN_WAKE_DEADLINE) {
            mine = take_mine(h, set, info);
            if (mine != 0) return mine; // what woke it was a signal sent to it alone
            errno = EINTR; // a handler ran, or the fiber was cancelled
            return -1;
        }
    }
}

/// Copies of the set and the timeout, read in the kernel's order; -1 with
/// EFAULT as it says it.
static int copy_args(const sigset_t *set, sigset_t *set_copy, const struct timespec *timeout,
                     struct timespec *timeout_copy) {
    if (shim_copy_sigset(set_copy, set) != 0) return -1;
    return timeout ? shim_copy_in(timeout_copy, timeout, sizeof *timeout_copy) : 0;
}

GREEN_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
    if (!green_on_fiber()) return REAL(sigtimedwait)(set, info, timeout);
    sigset_t s;
    struct timespec t;
    if (copy_args(set, &s, timeout, &t) != 0) return -1;
    if (timeout && t.tv_sec == 0 && t.tv_nsec == 0) { // a look: one sent to this thread alone first, as below
        int mine = take_mine(shim_threads, &s, info);
        return mine != 0 ? mine : REAL(sigtimedwait)(set, info, timeout);
    }
    return wait_for_signal(&s, info, timeout ? &t : NULL);
}

GREEN_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info) {
    if (!green_on_fiber()) return REAL(sigwaitinfo)(set, info);
    sigset_t s;
    if (copy_args(set, &s, NULL, NULL) != 0) return -1;
    return wait_for_signal(&s, info, NULL);
}

/// sigwait returns an error number, and is not interrupted by handlers.
GREEN_EXPORT int sigwait(const sigset_t *set, int *sig) {
    if (!green_on_fiber()) return REAL(sigwait)(set, sig);
    sigset_t s;
    if (copy_args(set, &s, NULL, NULL) != 0) return errno;
    for (;;) {
        int r = wait_for_signal(&s, NULL, NULL);
        if (r > 0) {
            *sig = r;
            return 0;
        }
        if (errno != EINTR) return errno;
    }
}
