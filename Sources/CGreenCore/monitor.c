// monitor.c — the blocking monitor (gevent's monitor_thread). A watchdog
// thread samples every hub's switch counter; a hub that has fibers alive,
// is not waiting in libev, and has not switched for the threshold is
// stalled: some fiber runs without parking, or is stuck in a call the shim
// cannot see. The monitor says which fiber, and has the hub's thread print
// its own backtrace (a signal handler with backtrace_symbols_fd), so the
// stalling call can be found.
#define _GNU_SOURCE
#include "internal.h"
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static green_sched *registry;
static int64_t threshold = 0;     ///< ns; 0 = not started
static uint64_t reports;
static int backtrace_signal;

void green_monitor_register(green_sched *s) {
    pthread_mutex_lock(&registry_lock);
    s->registry_next = registry;
    registry = s;
    pthread_mutex_unlock(&registry_lock);
}

void green_monitor_unregister(green_sched *s) {
    pthread_mutex_lock(&registry_lock);
    for (green_sched **pp = &registry; *pp; pp = &(*pp)->registry_next)
        if (*pp == s) { *pp = s->registry_next; break; }
    pthread_mutex_unlock(&registry_lock);
}

static void print_own_backtrace(int sig) {
    (void)sig;
    int saved = errno;
    void *frames[64];
    int n = backtrace(frames, 64);
    static const char head[] = "green: backtrace of the stalled hub's thread:\n";
    ssize_t unused = write(2, head, sizeof head - 1);
    (void)unused;
    backtrace_symbols_fd(frames, n, 2);
    errno = saved;
}

typedef struct watch {
    green_sched *s;
    uint64_t switches;
    int64_t since;     ///< when `switches` was first seen unchanged
    uint64_t reported; ///< the switch count already reported (one report per stall)
} watch;

static void *monitor_main(void *arg) {
    (void)arg;
    watch w[256];
    int nw = 0;
    for (;;) {
        int64_t period = __atomic_load_n(&threshold, __ATOMIC_RELAXED) / 4;
        if (period < 2000000) period = 2000000;
        struct timespec ts = {period / 1000000000, period % 1000000000};
        nanosleep(&ts, NULL);
        int64_t now = green_now_ns(), limit = __atomic_load_n(&threshold, __ATOMIC_RELAXED);
        pthread_mutex_lock(&registry_lock);
        // Keep the watch list in step with the registry.
        int n = 0;
        watch next[256];
        for (green_sched *s = registry; s && n < 256; s = s->registry_next) {
            watch x = {s, 0, now, (uint64_t)-1};
            for (int i = 0; i < nw; i++) if (w[i].s == s) { x = w[i]; break; }
            uint64_t sw = __atomic_load_n(&s->switches, __ATOMIC_RELAXED);
            int idle = __atomic_load_n(&s->in_loop, __ATOMIC_RELAXED) || s->live == 0;
            if (sw != x.switches || idle) { x.switches = sw; x.since = now; }
            else if (now - x.since >= limit && x.reported != sw) {
                x.reported = sw;
                __atomic_add_fetch(&reports, 1, __ATOMIC_RELAXED);
                green_fiber *f = s->current;
                char name[48];
                memcpy(name, f->name, sizeof name);
                name[47] = 0;
                fprintf(stderr, "green: blocking monitor: the hub on thread %lu has not switched fibers for %lld ms; "
                        "running: %s (fiber #%llu). Something there runs without parking, or blocks in a call "
                        "Green cannot see.\n",
                        (unsigned long)s->thread, (long long)((now - x.since) / 1000000),
                        f == s->root ? "the thread's root context" : (name[0] ? name : "an unnamed fiber"),
                        (unsigned long long)f->id);
                fflush(stderr);
                pthread_kill(s->thread, backtrace_signal);
            }
            next[n++] = x;
        }
        pthread_mutex_unlock(&registry_lock);
        memcpy(w, next, (size_t)n * sizeof *w);
        nw = n;
    }
    return NULL;
}

int green_monitor_start(int64_t threshold_ns) {
    if (threshold_ns <= 0) return EINVAL;
    int64_t old = __atomic_exchange_n(&threshold, threshold_ns, __ATOMIC_RELAXED);
    if (old) return 0; // already running: retuned
    // Load the unwinder now, outside any signal handler.
    void *warm[2];
    backtrace(warm, 2);
    backtrace_signal = SIGRTMIN + 3;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = print_own_backtrace;
    sa.sa_flags = SA_RESTART | SA_ONSTACK; // the stalled call resumes as if nothing happened
    sigemptyset(&sa.sa_mask);
    sigaction(backtrace_signal, &sa, NULL);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, monitor_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc) __atomic_store_n(&threshold, 0, __ATOMIC_RELAXED);
    return rc;
}

uint64_t green_monitor_reports(void) { return __atomic_load_n(&reports, __ATOMIC_RELAXED); }
