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

/// sigtimedwait's contract; `timeout` NULL waits for ever.
static int wait_for_signal(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
    if (timeout && !green_timespec_valid(timeout)) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline = timeout ? green_deadline_in(green_timespec_ns(timeout)) : GREEN_NO_DEADLINE;
    green_fair_turn();
    for (;;) {
        // A signal sent to this fiber thread alone (green run) first, then the kernel's.
        const shim_thread_hooks *h = shim_threads;
        int mine = h ? h->take_thread_signal(set, info) : 0;
        if (mine > 0) return mine;
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
            mine = h ? h->take_thread_signal(set, info) : 0;
            if (mine > 0) return mine; // what woke it was a signal sent to it alone
            errno = EINTR; // a handler ran, or the fiber was cancelled
            return -1;
        }
    }
}

GREEN_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
    if (!green_on_fiber() || (timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0) || !set)
        return REAL(sigtimedwait)(set, info, timeout);
    return wait_for_signal(set, info, timeout);
}

GREEN_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info) {
    if (!green_on_fiber() || !set) return REAL(sigwaitinfo)(set, info);
    return wait_for_signal(set, info, NULL);
}

/// sigwait returns an error number, and is not interrupted by handlers.
GREEN_EXPORT int sigwait(const sigset_t *set, int *sig) {
    if (!green_on_fiber() || !set) return REAL(sigwait)(set, sig);
    for (;;) {
        int r = wait_for_signal(set, NULL, NULL);
        if (r > 0) {
            *sig = r;
            return 0;
        }
        if (errno != EINTR) return errno;
    }
}
