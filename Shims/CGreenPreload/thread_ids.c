// thread_ids.c — thread ids. Each fiber thread has an id of its own, which
// gettid() (and syscall(SYS_gettid)) return: numbers from 0x20000000 up,
// above any kernel tid, so no real thread is ever named by mistake. The main
// thread keeps its kernel tid (the process id), native threads theirs.
//
// The calls that take a tid accept a fiber thread's: tgkill signals that
// thread (sigmask.c: its handler runs on it, its mask applies), and the
// scheduling calls (affinity,
// policy, priority), since that OS thread is what the kernel schedules. The
// id of a fiber thread that has finished fails with ESRCH, as the tid of a
// thread that is gone.
#include "preload.h"
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

GREEN_EXPORT pid_t gettid(void) {
    gthread *t = gthread_current();
    if (t) return t->id;
    // The main thread keeps its tid when its hub runs on another OS thread
    // (handoff.c): the one it started with, the process id.
    green_sched *s = green_sched_current();
    if (s && s == hubs_main() && green_parkable_fiber() == green_sched_root(s)) return preload_hub_tid();
    return (pid_t)GREEN_SYSCALL(SYS_gettid);
}

/// `tid` as the kernel knows it, or -1 with errno ESRCH.
static pid_t kernel_tid(pid_t tid) {
    pid_t k = preload_kernel_tid(tid);
    if (k < 0) errno = ESRCH;
    return k;
}

/// tgkill to a thread of this process: the fiber thread (or main) it names
/// gets it, as pthread_kill gives it; -1 when it is not one of them.
static int kill_own_thread(pid_t tid, int sig) {
    if (tid == preload_hub_tid() && gsig_main()) return gsig_kill(gsig_main(), sig);
    if (tid < GTHREAD_FIRST_ID) return -1;
    // With one OS thread for the program's code (one hub, no hand-off), no
    // fiber thread can finish while a fiber thread sends: it looks the target
    // up, unlocks, then sends. Otherwise the target may finish meanwhile: it
    // sends under the lock, with this OS thread's signals held back until the
    // unlock (one sent to itself then runs its handler after it, and a
    // handler that makes or names a thread, which takes the lock, does not
    // deadlock).
    int unlocked = gsig_current() != NULL && gsig_unlocked_begin();
    int keep = !unlocked;
    sigset_t all, before;
    if (keep) {
        sigfillset(&all);
        GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &all, &before, _NSIG / 8);
    }
    gthread_registry_lock();
    gthread *t = gthread_by_id(tid);
    int r = ESRCH;
    if (!keep) {
        gthread_registry_unlock();
        r = t ? gsig_kill(&t->sig, sig) : ESRCH;
        gsig_unlocked_end();
        return r;
    }
    if (t) r = gsig_kill(&t->sig, sig);
    gthread_registry_unlock();
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &before, NULL, _NSIG / 8);
    return r;
}

GREEN_EXPORT int tgkill(pid_t tgid, pid_t tid, int sig) {
    if (tgid == getpid() && tid > 0) {
        int r = kill_own_thread(tid, sig);
        if (r >= 0) {
            if (r == 0) return 0;
            errno = r;
            return -1;
        }
    }
    return (int)GREEN_SYSCALL(SYS_tgkill, (long)tgid, (long)tid, (long)sig);
}

GREEN_EXPORT int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t *set) {
    pid_t k = kernel_tid(pid);
    return k < 0 ? -1 : (int)GREEN_SYSCALL(SYS_sched_setaffinity, (long)k, (long)size, set);
}

GREEN_EXPORT int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set) {
    pid_t k = kernel_tid(pid);
    if (k < 0) return -1;
    long n = GREEN_SYSCALL(SYS_sched_getaffinity, (long)k, (long)size, set);
    if (n < 0) return -1;
    // As glibc: the kernel fills n bytes; clear the rest of the caller's set.
    if ((size_t)n < size) memset((char *)set + n, 0, size - (size_t)n);
    return 0;
}

GREEN_EXPORT int sched_setparam(pid_t pid, const struct sched_param *param) {
    pid_t k = kernel_tid(pid);
    return k < 0 ? -1 : (int)GREEN_SYSCALL(SYS_sched_setparam, (long)k, param);
}

GREEN_EXPORT int sched_getparam(pid_t pid, struct sched_param *param) {
    pid_t k = kernel_tid(pid);
    return k < 0 ? -1 : (int)GREEN_SYSCALL(SYS_sched_getparam, (long)k, param);
}

GREEN_EXPORT int sched_setscheduler(pid_t pid, int policy, const struct sched_param *param) {
    pid_t k = kernel_tid(pid);
    return k < 0 ? -1 : (int)GREEN_SYSCALL(SYS_sched_setscheduler, (long)k, (long)policy, param);
}

GREEN_EXPORT int sched_getscheduler(pid_t pid) {
    pid_t k = kernel_tid(pid);
    return k < 0 ? -1 : (int)GREEN_SYSCALL(SYS_sched_getscheduler, (long)k);
}

/// The CPU clock of the OS thread running a fiber thread now (glibc's would
/// name the tid in its descriptor, which stays the first OS thread's after
/// a hand-off). As glibc: the clock id of a thread's kernel tid.
GREEN_EXPORT int pthread_getcpuclockid(pthread_t th, clockid_t *clock) {
    gthread *t = gthread_from(th);
    if (!t) return PREAL(pthread_getcpuclockid)(th, clock);
    pid_t k = preload_kernel_tid(t->id);
    if (k < 0) return ESRCH;
    *clock = (clockid_t)(((unsigned)~k << 3) | 4 | 2); // MAKE_THREAD_CPUCLOCK(k, CPUCLOCK_SCHED): per thread, sched
    return 0;
}
