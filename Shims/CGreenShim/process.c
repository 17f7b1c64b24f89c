// process.c — waiting for child processes without blocking the hub.
// waitpid/wait4/wait on a fiber park until the child changes state: on a
// pidfd (readable when the child exits) when waiting for one child, else by
// polling with WNOHANG at a growing interval (1 to 50 ms). system() runs on
// the thread pool, since glibc waits for its child internally.
#include "shim.h"
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/// Close the pidfd, if any (no cancellation point: it runs in a cleanup handler).
static void close_pidfd(void *fd) { shim_close_own(*(int *)fd); }

static pid_t wait_cooperatively(pid_t pid, int *status, int options, struct rusage *ru) {
    int pidfd = -1;
    if (pid > 0 && !(options & (WUNTRACED | WCONTINUED))) pidfd = (int)GREEN_SYSCALL(SYS_pidfd_open, pid, 0);
    int64_t backoff = 1000000;
    pid_t result;
    // The waits are cancellation points: a thread cancelled in one closes the pidfd too.
    pthread_cleanup_push(close_pidfd, &pidfd);
    for (;;) {
        pid_t r = REAL(wait4)(pid, status, options | WNOHANG, ru);
        if (r != 0) { // the child changed state, or an error (ECHILD, EINVAL…)
            result = r;
            break;
        }
        int w = pidfd >= 0 ? hub()->wait_fd(pidfd, GREEN_READ, green_now_ns() + 1000000000LL, &(int){0}, 0)
                           : hub()->sleep_until(green_now_ns() + backoff, 0);
        if (backoff < 50000000) backoff *= 2;
        if (w != GREEN_WAKE_NORMAL && w != GREEN_WAKE_DEADLINE && w != 0) {
            errno = w == GREEN_WAKE_CANCELLED || w == GREEN_WAKE_TIMEOUT_SCOPE ? EINTR : shim_errno_for_wake(w);
            result = -1;
            break;
        }
    }
    pthread_cleanup_pop(1);
    return result;
}

GREEN_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru) {
    if (!green_on_fiber() || (options & WNOHANG)) return REAL(wait4)(pid, status, options, ru);
    return wait_cooperatively(pid, status, options, ru);
}

GREEN_EXPORT pid_t waitpid(pid_t pid, int *status, int options) {
    if (!green_on_fiber() || (options & WNOHANG)) return REAL(waitpid)(pid, status, options);
    return wait_cooperatively(pid, status, options, NULL);
}

GREEN_EXPORT pid_t wait(int *status) {
    if (!green_on_fiber()) return REAL(wait)(status);
    return wait_cooperatively(-1, status, 0, NULL);
}

typedef struct system_call {
    const char *command;
    int result, err;
    int has_mask;  ///< the caller is a fiber thread with a mask of its own…
    sigset_t mask; ///< …which the shell gets (the worker's own blocks everything)
} system_call;

static void run_system(void *p) {
    system_call *c = p;
    sigset_t saved;
    if (c->has_mask) GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &c->mask, &saved, 8);
    c->result = REAL(system)(c->command);
    c->err = errno;
    if (c->has_mask) GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &saved, NULL, 8);
}

GREEN_EXPORT int system(const char *command) {
    if (!green_on_fiber()) return REAL(system)(command);
    shim_fd_share_sockets(1, 0); // the shell gets the program's sockets: their flags as asked
    system_call c = {command, 0, 0, 0, {{0}}};
    const shim_thread_hooks *h = shim_threads;
    c.has_mask = h && h->child_sigmask(&c.mask);
    if (hub()->run_blocking(run_system, &c) != 0) return REAL(system)(command);
    errno = c.err;
    return c.result;
}
