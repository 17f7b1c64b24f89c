// monitor.c — the blocking monitor (gevent's monitor_thread). A watchdog
// thread samples every hub's switch counter; a hub that has fibers alive,
// is not waiting in libev, and has not switched for the threshold is
// stalled: some fiber runs without parking, or is stuck in a call the shim
// cannot see. The monitor says which fiber, and has the hub's thread print
// its own backtrace (a signal handler with backtrace_symbols_fd), so the
// stalling call can be found.
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

static int64_t stalled_ms; ///< set by the monitor just before it signals the stalled thread

static void put(const char *s) {
    ssize_t unused = write(2, s, strlen(s));
    (void)unused;
}

static void put_number(uint64_t v) {
    char buf[24], *p = buf + sizeof buf;
    *--p = 0;
    do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
    put(p);
}

/// Runs on the stalled hub's own thread, so it reads that hub's state
/// without racing it, and prints its own backtrace (write(2) only).
static void report_stall(int sig) {
    (void)sig;
    int saved = errno;
    green_sched *s = green_tls_sched;
    if (s) {
        green_fiber *f = s->current;
        put("green: blocking monitor: this hub has not switched fibers for ");
        put_number((uint64_t)__atomic_load_n(&stalled_ms, __ATOMIC_RELAXED));
        put(" ms; running: ");
        put(f == s->root ? "the thread's root context" : (f->name[0] ? f->name : "an unnamed fiber"));
        put(" (fiber #");
        put_number(f->id);
        put("). Something there runs without parking, or blocks in a call Green cannot see.\n");
    }
    void *frames[64];
    int n = backtrace(frames, 64);
    put("green: backtrace of the stalled hub's thread:\n");
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
            int idle = __atomic_load_n(&s->in_loop, __ATOMIC_RELAXED) || __atomic_load_n(&s->live, __ATOMIC_RELAXED) == 0;
            if (sw != x.switches || idle) { x.switches = sw; x.since = now; }
            else if (now - x.since >= limit && x.reported != sw) {
                x.reported = sw;
                __atomic_add_fetch(&reports, 1, __ATOMIC_RELAXED);
                __atomic_store_n(&stalled_ms, (now - x.since) / 1000000, __ATOMIC_RELAXED);
                pthread_kill(s->thread, backtrace_signal); // the thread reports itself
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
    sa.sa_handler = report_stall;
    sa.sa_flags = SA_RESTART | SA_ONSTACK; // the stalled call resumes as if nothing happened
    sigemptyset(&sa.sa_mask);
    sigaction(backtrace_signal, &sa, NULL);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // (The preload library starts the monitor before its hub exists, so that
    // its pthread_create makes this an OS thread, not a fiber.)
    int rc = pthread_create(&t, &attr, monitor_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc) __atomic_store_n(&threshold, 0, __ATOMIC_RELAXED);
    return rc;
}

uint64_t green_monitor_reports(void) { return __atomic_load_n(&reports, __ATOMIC_RELAXED); }
