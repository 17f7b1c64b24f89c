// watcher.c — the library's one thread that looks at the hubs from outside
// (`green-watch` in ps -L), started with the program's second thread:
// preemption (preempt.c) every slice, hand-off (handoff.c) at its own,
// finer pace. It blocks every signal: the program's are not for it.
#include "preload.h"
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>

static _Atomic int started; ///< 0 again in a fork child: the thread did not come along
static int preempting, handing_off;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void *watch(void *unused) {
    (void)unused;
    os_thread_set_name("green-watch");
    sigset_t all;
    sigfillset(&all);
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, _NSIG / 8); // and the spares it makes
    int64_t next_preempt = INT64_MAX, next_handoff = INT64_MAX, now = now_ns();
    if (preempting) next_preempt = now + preempt_look();
    if (handing_off) next_handoff = now + handoff_look();
    for (;;) {
        int64_t next = next_preempt < next_handoff ? next_preempt : next_handoff;
        struct timespec at = {next / 1000000000, next % 1000000000};
        GREEN_SYSCALL(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
        now = now_ns();
        if (now >= next_handoff) next_handoff = now + handoff_look();
        if (now >= next_preempt) next_preempt = now + preempt_look();
    }
    return NULL;
}

static void after_fork_in_child(void) {
    atomic_store(&started, 0);
    preempt_after_fork_in_child();
}

void watcher_start(void) {
    if (atomic_load_explicit(&started, memory_order_acquire) || atomic_exchange(&started, 1)) return;
    static int once;
    if (!once) {
        once = 1;
        pthread_atfork(NULL, NULL, after_fork_in_child);
    }
    preempting = preempt_prepare();
    handing_off = handoff_prepare();
    if (!preempting && !handing_off) return;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (PREAL(pthread_create)(&t, &attr, watch, NULL) != 0) preload_log("no watcher thread: no preemption, no hand-off");
    else thread_block_wrap_setxid();
    pthread_attr_destroy(&attr);
}
