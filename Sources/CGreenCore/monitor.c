// monitor.c — the blocking monitor (gevent's monitor_thread) and the fiber
// dump that does not need the hub.
//
// One OS thread of the runtime's own, the *monitor thread*, does both:
//
// - **Stalls.** With a threshold set (green_monitor_start), it samples every
//   hub's switch counter; a hub that has fibers alive, is not waiting in
//   libev, and has not switched for the threshold is stalled: some fiber runs
//   without parking (spins), or is stuck in a call the shim cannot see. The
//   monitor says which fiber and which OS thread, has that thread print its
//   own backtrace (a signal, SIGRTMIN+3, whose handler calls
//   backtrace_symbols_fd), and prints the hub's fiber dump.
// - **Dumps on a signal** (green_dump_on_signal, GREEN_DUMP_SIGNAL under the
//   preload). The handler only bumps a counter and wakes the monitor thread
//   with a futex; the monitor thread prints every hub's fibers itself. So the
//   dump comes out when the hub never runs again (a fiber spins) and when the
//   hub's thread blocks the signal (the kernel then delivers it to the
//   monitor thread, which keeps only that signal unblocked).
//
// Reading another thread's fibers, and what it promises
// -----------------------------------------------------
// The hub's thread keeps running while the monitor thread reads its fiber
// list, without a lock (the hub takes none on its switch path). What makes
// that safe, and what is only approximate:
//
// - The hub record (green_sched) and the root context's record are heap
//   memory that lives until the hub is unregistered, which takes
//   registry_lock; the monitor holds registry_lock while it reads, so they
//   stay valid. The fields it reads there are word-sized and aligned and read
//   with atomic loads: a value may be a moment old, never half-written.
// - Every other fiber record sits at the top of the fiber's own stack or, for
//   green_fiber_spawn's fibers, in heap memory; a finished fiber's stack may
//   be unmapped (a stack mapped alone) or reused by a new fiber at any moment,
//   and a heap record freed or reused. So no fiber record, and no string it points to
//   (its wait label), is ever dereferenced: each is copied with
//   process_vm_readv on this very process (or, where that is refused, by
//   writing it into a pipe), which fails with EFAULT on unmapped memory
//   instead of faulting. A copied record is believed only if it still names
//   this hub and a valid state; the walk stops at the first one that does
//   not, and after the live count plus a margin of steps (a list relinked
//   while it is walked cannot loop it forever). Names and labels are cut at
//   their buffer's end and non-printable bytes replaced.
// - Consistency: the walk is repeated (up to 3 times) while the hub's switch
//   counter moves. A hub waiting in epoll changes nothing; on a stalled hub
//   only the running fiber can (spawning or waking others without a switch):
//   their dumps are one moment's picture — the cases the dump is for. A busy
//   hub's dump is a few microseconds' smear of states (said so in its header).
//   Stale reads can make a dump wrong (a fiber missing, or listed twice), never
//   crash the program or change what it does.
//
// Nothing here runs on the switch path: a hub pays one malloc'd registry
// entry when it is created.
#define _GNU_SOURCE
#include "internal.h"
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

// ---- the registry of hubs ---------------------------------------------------------

typedef struct hub_entry {
    green_sched *s;
    pid_t tid;
    struct hub_entry *next;
    // The monitor's watch of this hub (monitor thread only).
    uint64_t switches;
    int64_t since;     ///< when `switches` was first seen unchanged
    uint64_t reported; ///< the switch count already reported (one report per stall)
} hub_entry;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static hub_entry *registry;

/// A fork child has only the forking thread: its hub's entry is the one
/// left, and the lock may have been held by a thread that did not come along.
static void registry_after_fork_in_child(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    registry_lock = fresh;
    green_sched *self = green_sched_current();
    hub_entry *kept = NULL;
    for (hub_entry *e = registry, *next; e; e = next) {
        next = e->next;
        if (e->s == self) {
            e->next = NULL;
            e->tid = (pid_t)GREEN_SYSCALL(SYS_gettid);
            kept = e;
        } else {
            free(e);
        }
    }
    registry = kept;
}

static pthread_once_t registry_atfork_once = PTHREAD_ONCE_INIT;
static void registry_atfork(void) { pthread_atfork(NULL, NULL, registry_after_fork_in_child); }

void green_monitor_register(green_sched *s) {
    pthread_once(&registry_atfork_once, registry_atfork);
    hub_entry *e = calloc(1, sizeof *e);
    if (!e) return; // the monitor will not see this hub; nothing else depends on it
    e->s = s;
    e->tid = (pid_t)GREEN_SYSCALL(SYS_gettid); // called on the hub's own thread
    e->since = green_now_ns();
    e->reported = (uint64_t)-1;
    pthread_mutex_lock(&registry_lock);
    e->next = registry;
    registry = e;
    pthread_mutex_unlock(&registry_lock);
}

void green_monitor_unregister(green_sched *s) {
    hub_entry *gone = NULL;
    pthread_mutex_lock(&registry_lock);
    for (hub_entry **pp = &registry; *pp; pp = &(*pp)->next)
        if ((*pp)->s == s) {
            gone = *pp;
            *pp = gone->next;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    free(gone);
}

void green_monitor_each_hub(green_sched *except, void (*fn)(green_sched *s, void *arg), void *arg) {
    pthread_mutex_lock(&registry_lock);
    for (hub_entry *e = registry; e; e = e->next)
        if (e->s != except) fn(e->s, arg);
    pthread_mutex_unlock(&registry_lock);
}

// ---- output: raw write(2) on fd 2 ---------------------------------------------------
// Not write(): under the preload that is the shim's, and a fiber (the signal
// handler runs on one) must not park in it.

static void put_bytes(const char *s, size_t n) {
    while (n) {
        long w = GREEN_SYSCALL(SYS_write, 2, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void put(const char *s) { put_bytes(s, strlen(s)); }

static void put_number(uint64_t v) {
    char buf[24], *p = buf + sizeof buf;
    *--p = 0;
    do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
    put(p);
}

/// "green[PID]: " (async-signal-safe).
static void put_prefix(void) {
    put("green[");
    put_number((uint64_t)getpid());
    put("]: ");
}

void green_vlog(const char *fmt, va_list ap) {
    char line[512];
    int n = snprintf(line, sizeof line, "green[%d]: ", (int)getpid());
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    put_bytes(line, (size_t)n);
}

/// One line with the prefix, formatted (monitor thread only: not async-signal-safe).
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    green_vlog(fmt, ap);
    va_end(ap);
}

// ---- the monitor thread's wake-ups: a futex word --------------------------------------

static uint32_t wake_word;     ///< bumped by whoever wants the monitor thread to look now
static uint32_t dump_requests; ///< bumped by the dump signal's handler
static int dump_signal;        ///< 0: no dump on a signal
static int64_t threshold = 0;  ///< ns; 0: no stall sampling
static uint64_t reports;
static int backtrace_signal;
static uint32_t backtrace_done; ///< futex word: bumped by the stalled thread's handler when it has printed

/// Async-signal-safe: wake the monitor thread.
static void poke(void) {
    __atomic_add_fetch(&wake_word, 1, __ATOMIC_RELEASE);
    GREEN_SYSCALL(SYS_futex, &wake_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/// Wait while *word == seen, at most `ns` (< 0: no limit).
static void futex_wait(uint32_t *word, uint32_t seen, int64_t ns) {
    struct timespec ts, *t = NULL;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        t = &ts;
    }
    GREEN_SYSCALL(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, t, NULL, 0);
}

static void on_dump_signal(int sig) {
    (void)sig;
    int saved = errno;
    __atomic_add_fetch(&dump_requests, 1, __ATOMIC_RELEASE);
    poke();
    errno = saved;
}

/// Runs on the stalled hub's own thread (SA_RESTART: the stalled call
/// resumes as if nothing happened). Async-signal-safe but for backtrace(),
/// whose unwinder green_monitor_start loaded beforehand.
static void print_backtrace(int sig) {
    (void)sig;
    int saved = errno;
    void *frames[64];
    int n = backtrace(frames, 64);
    put_prefix();
    put("backtrace of the stalled hub's thread (OS thread ");
    put_number((uint64_t)GREEN_SYSCALL(SYS_gettid));
    put("):\n");
    backtrace_symbols_fd(frames, n, 2);
    __atomic_add_fetch(&backtrace_done, 1, __ATOMIC_RELEASE);
    GREEN_SYSCALL(SYS_futex, &backtrace_done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = saved;
}

// ---- reading another thread's memory without faulting ---------------------------------

static int vm_readv_refused; ///< process_vm_readv is not allowed here (seccomp, old kernel): use a pipe

/// Copy n bytes from src (memory of this process that may have been unmapped
/// meanwhile) to dst. 0, or -1 if any of it is not readable.
static int safe_copy(void *dst, const void *src, size_t n, int pipe_fds[2]) {
    if (!vm_readv_refused) {
        struct iovec local = {dst, n}, remote = {(void *)src, n};
        long r = GREEN_SYSCALL(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote, 1L, 0L);
        if (r == (long)n) return 0;
        if (r >= 0 || errno == EFAULT || errno == ESRCH) return -1;
        vm_readv_refused = 1; // ENOSYS, EPERM: fall through to the pipe, from now on
    }
    if (pipe_fds[0] < 0 && GREEN_SYSCALL(SYS_pipe2, pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        pipe_fds[0] = pipe_fds[1] = -1;
        return -1;
    }
    // The kernel reads src for us: EFAULT instead of a fault. Small copies only (< the pipe's 64 KiB).
    long w = GREEN_SYSCALL(SYS_write, pipe_fds[1], src, n);
    if (w <= 0) return -1;
    long r = GREEN_SYSCALL(SYS_read, pipe_fds[0], dst, (size_t)w);
    return (w == (long)n && r == w) ? 0 : -1;
}

/// Copy the NUL-terminated string at src into out (cut to `size - 1`
/// bytes, non-printable bytes replaced by '?'); "?" if it cannot be read.
static void safe_string(char *out, size_t size, const char *src, int pipe_fds[2]) {
    size_t got = 0;
    int readable = 0;
    const uintptr_t page = 4096; // the smallest page size: a copy never crosses into a page not yet known mapped
    while (src && got < size - 1) {
        size_t chunk = (size_t)(page - (uintptr_t)(src + got) % page);
        if (chunk > size - 1 - got) chunk = size - 1 - got;
        if (safe_copy(out + got, src + got, chunk, pipe_fds) != 0) break;
        readable = 1;
        char *nul = memchr(out + got, 0, chunk);
        if (nul) {
            got = (size_t)(nul - out);
            break;
        }
        got += chunk;
    }
    out[got] = 0;
    if (!readable) strcpy(out, "?");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
}

// ---- a hub's fibers as seen from the monitor thread --------------------------------------

#define VIEW_MAX_LISTED 1000     ///< fibers listed per hub; the rest are counted
#define VIEW_MAX_WALK 1000000    ///< most steps of the list walk, whatever happens to the list meanwhile

typedef struct fiber_view {
    uint64_t id;
    char name[48];
    int state;
    char waiting_on[40];
    int fd, fd_events;
    double parked_seconds;
    int current;
} fiber_view;

typedef struct hub_view {
    pid_t tid;
    uint64_t switches, live;
    int in_loop;          ///< waiting in libev: no fiber runs
    int hub_running;      ///< the hub fiber itself runs (libev callbacks)
    int moving;           ///< the switch counter moved during every try
    int truncated;        ///< the walk stopped at a record it could not believe
    size_t total;         ///< fibers seen (root included)
    size_t listed;
    fiber_view *fibers;   ///< VIEW_MAX_LISTED of them
    fiber_view current;   ///< the running fiber (id, name), when a fiber runs
} hub_view;

static void view_fiber(const green_fiber *f, int is_current, double now, int pipe_fds[2], fiber_view *out) {
    memset(out, 0, sizeof *out);
    out->id = f->id;
    memcpy(out->name, f->name, sizeof out->name);
    out->name[sizeof out->name - 1] = 0;
    for (char *p = out->name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    out->state = f->state;
    out->current = is_current;
    out->fd = -1;
    if (f->state == GREEN_FIBER_PARKED) {
        if (f->wait_label) safe_string(out->waiting_on, sizeof out->waiting_on, f->wait_label, pipe_fds);
        if (strcmp(out->waiting_on, "fd") == 0) {
            out->fd = f->wait_fd;
            out->fd_events = f->wait_events;
        }
        out->parked_seconds = now - f->parked_at;
        if (out->parked_seconds < 0) out->parked_seconds = 0;
    }
}

/// Read hub `e` from any thread (registry_lock held). `v->fibers` has room for VIEW_MAX_LISTED.
static void read_hub(hub_entry *e, hub_view *v, int pipe_fds[2]) {
    green_sched *s = e->s;
    fiber_view *fibers = v->fibers;
    for (int attempt = 0; attempt < 3; attempt++) {
        memset(v, 0, sizeof *v);
        v->fibers = fibers;
        v->tid = e->tid;
        uint64_t before = __atomic_load_n(&s->census.switches, __ATOMIC_ACQUIRE);
        v->in_loop = __atomic_load_n(&s->census.in_loop, __ATOMIC_ACQUIRE);
        v->live = __atomic_load_n(&s->census.live, __ATOMIC_RELAXED);
        green_fiber *current = __atomic_load_n(&s->run.current, __ATOMIC_ACQUIRE);
        green_fiber *root = s->run.root; // both set once, when the hub was made
        v->hub_running = current == s->run.hub;
        int have_current = v->hub_running;
        double now = ev_time(); // the clock of parked_at (libev's ev_now)

        green_fiber copy;
        fiber_view fv;
        // The root context: heap memory that lives as long as the hub.
        if (safe_copy(&copy, root, sizeof copy, pipe_fds) == 0) {
            view_fiber(&copy, current == root, now, pipe_fds, &fv);
            fibers[v->listed++] = fv;
            if (current == root) v->current = fv, have_current = 1;
        }
        v->total = 1;
        green_fiber *f = __atomic_load_n(&s->census.all, __ATOMIC_ACQUIRE);
        size_t max_steps = v->live + 1024 < VIEW_MAX_WALK ? (size_t)v->live + 1024 : VIEW_MAX_WALK;
        for (size_t steps = 0; f && steps < max_steps; steps++) {
            if (safe_copy(&copy, f, sizeof copy, pipe_fds) != 0 || copy.sched != s || copy.state > GREEN_FIBER_DONE) {
                v->truncated = 1; // a finished fiber's stack, unmapped or reused meanwhile
                break;
            }
            view_fiber(&copy, f == current, now, pipe_fds, &fv);
            if (f == current) v->current = fv, have_current = 1;
            if (v->listed < VIEW_MAX_LISTED) fibers[v->listed++] = fv;
            v->total++;
            f = copy.all_next;
        }
        if (f) v->truncated = 1;
        // The running fiber was not in the list (it was being linked or unlinked): read it alone.
        if (!have_current && safe_copy(&copy, current, sizeof copy, pipe_fds) == 0 && copy.sched == s)
            view_fiber(&copy, 1, now, pipe_fds, &v->current);
        v->switches = __atomic_load_n(&s->census.switches, __ATOMIC_ACQUIRE);
        if (v->switches == before) return;
    }
    v->moving = 1;
}

static const char *state_name(int state) {
    static const char *names[] = {"ready", "running", "parked", "done"};
    return state >= 0 && state <= GREEN_FIBER_DONE ? names[state] : "?";
}

static const char *fiber_label(const fiber_view *f) {
    if (f->id == 0 && (f->name[0] == 0 || strcmp(f->name, "root") == 0)) return "the thread's root context";
    return f->name[0] ? f->name : "an unnamed fiber";
}

static void print_hub(const hub_view *v) {
    say("fiber dump: %zu fiber(s) on the hub of OS thread %d, read by the monitor thread%s", v->total, (int)v->tid,
        v->moving ? " while the hub kept switching (states a few microseconds apart)" : "");
    for (size_t i = 0; i < v->listed; i++) {
        const fiber_view *f = &v->fibers[i];
        if (f->fd >= 0)
            say("  #%llu %-20s %-7s on fd %d (%s) for %.3f s", (unsigned long long)f->id, f->name, state_name(f->state),
                f->fd, f->fd_events == GREEN_WRITE ? "write" : f->fd_events == GREEN_READ ? "read" : "read+write",
                f->parked_seconds);
        else if (f->state == GREEN_FIBER_PARKED)
            say("  #%llu %-20s %-7s on %s for %.3f s", (unsigned long long)f->id, f->name, state_name(f->state),
                f->waiting_on[0] ? f->waiting_on : "?", f->parked_seconds);
        else
            say("  #%llu %-20s %s", (unsigned long long)f->id, f->name, state_name(f->state));
    }
    if (v->total > v->listed) say("  … and %zu more", v->total - v->listed);
    if (v->truncated) say("  (the list changed while it was read: fibers that were finishing may be missing)");
    if (v->in_loop)
        say("  the hub is waiting in its loop for I/O, timers or wake-ups: no fiber is running");
    else if (v->hub_running)
        say("  the hub itself is running (libev callbacks, scheduling)");
    else
        say("  running now: %s (fiber #%llu); it keeps the CPU until it parks", fiber_label(&v->current),
            (unsigned long long)v->current.id);
}

void green_dump_all_hubs(void) {
    int pipe_fds[2] = {-1, -1};
    // Read everything under the lock (hubs cannot go away meanwhile), print after it.
    enum { MAX_HUBS = 64 };
    hub_view *views = calloc(MAX_HUBS, sizeof *views);
    if (!views) return;
    size_t n = 0, hubs = 0;
    pthread_mutex_lock(&registry_lock);
    for (hub_entry *e = registry; e; e = e->next) {
        hubs++;
        if (n == MAX_HUBS) continue;
        views[n].fibers = malloc(VIEW_MAX_LISTED * sizeof(fiber_view));
        if (!views[n].fibers) continue;
        read_hub(e, &views[n], pipe_fds);
        n++;
    }
    pthread_mutex_unlock(&registry_lock);
    if (pipe_fds[0] >= 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
    }
    if (hubs == 0) say("fiber dump: no hub in this process");
    for (size_t i = 0; i < n; i++) {
        print_hub(&views[i]);
        free(views[i].fibers);
    }
    if (hubs > n) say("fiber dump: %zu more hub(s) not shown", hubs - n);
    free(views);
}

// ---- stall reports --------------------------------------------------------------------

/// Whether OS thread `tid` of this process blocks `sig` (from /proc; 0 if unknown).
static int thread_blocks(pid_t tid, int sig) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    int fd = (int)GREEN_SYSCALL(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    long n = GREEN_SYSCALL(SYS_read, fd, buf, sizeof buf - 1);
    GREEN_SYSCALL(SYS_close, fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *line = strstr(buf, "\nSigBlk:");
    if (!line) return 0;
    unsigned long long mask = strtoull(line + 8, NULL, 16);
    return sig >= 1 && sig <= 64 && (mask >> (sig - 1)) & 1;
}

/// Report the first hub found stalled and not yet reported; false if none.
/// Monitor thread only.
static int report_one_stall(int64_t now, int64_t limit) {
    int pipe_fds[2] = {-1, -1};
    static fiber_view fibers[VIEW_MAX_LISTED]; // the monitor thread's alone
    hub_view v;
    memset(&v, 0, sizeof v);
    v.fibers = fibers;
    int found = 0, blocked = 0, sent = 0;
    int64_t stalled_ms = 0;
    uint32_t done_before = __atomic_load_n(&backtrace_done, __ATOMIC_ACQUIRE);

    pthread_mutex_lock(&registry_lock);
    for (hub_entry *e = registry; e; e = e->next) {
        green_sched *s = e->s;
        uint64_t sw = __atomic_load_n(&s->census.switches, __ATOMIC_RELAXED);
        int idle = __atomic_load_n(&s->census.in_loop, __ATOMIC_RELAXED) || __atomic_load_n(&s->census.live, __ATOMIC_RELAXED) == 0;
        if (sw != e->switches || idle) {
            e->switches = sw;
            e->since = now;
            continue;
        }
        if (now - e->since < limit || e->reported == sw) continue;
        e->reported = sw;
        __atomic_add_fetch(&reports, 1, __ATOMIC_RELAXED);
        stalled_ms = (now - e->since) / 1000000;
        read_hub(e, &v, pipe_fds);
        found = 1;
        break;
    }
    pthread_mutex_unlock(&registry_lock); // nothing below touches the hub: stderr may block
    if (pipe_fds[0] >= 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
    }
    if (found) {
        say("blocking monitor: this hub (OS thread %d) has not switched fibers for %lld ms; running: %s (fiber #%llu). "
            "Something there runs without parking, or blocks in a call Green cannot see.",
            (int)v.tid, (long long)stalled_ms, v.hub_running ? "the hub itself" : fiber_label(&v.current),
            (unsigned long long)v.current.id);
        // Its thread prints its own backtrace, unless it blocks the signal (then it never would).
        // tgkill by tid: harmless (ESRCH) if the thread has ended meanwhile.
        blocked = thread_blocks(v.tid, backtrace_signal);
        if (!blocked) sent = GREEN_SYSCALL(SYS_tgkill, (long)getpid(), (long)v.tid, (long)backtrace_signal) == 0;
        if (blocked) {
            say("no backtrace: OS thread %d blocks signal %d (SIGRTMIN+%d), which would have it print one; "
                "for one, run: gdb -p %d -batch -ex 'thread apply all bt'",
                (int)v.tid, backtrace_signal, backtrace_signal - SIGRTMIN, (int)getpid());
        } else if (sent) {
            // Wait (boundedly) for the backtrace, so the dump follows it instead of interleaving.
            int64_t end = green_now_ns() + 2000000000;
            uint32_t seen;
            while ((seen = __atomic_load_n(&backtrace_done, __ATOMIC_ACQUIRE)) == done_before) {
                int64_t left = end - green_now_ns();
                if (left <= 0) {
                    say("no backtrace from OS thread %d within 2 s (a handler of the program's own for signal %d?)",
                        (int)v.tid, backtrace_signal);
                    break;
                }
                futex_wait(&backtrace_done, seen, left);
            }
        }
        print_hub(&v);
    }
    return found;
}

// ---- the monitor thread ---------------------------------------------------------------

static void *monitor_main(void *arg) {
    (void)arg;
    int unblocked = 0; ///< the dump signal this thread has unblocked
    uint32_t dumps_seen = 0;
    int64_t next_sample = 0;
    for (;;) {
        uint32_t seen = __atomic_load_n(&wake_word, __ATOMIC_ACQUIRE);
        int sig = __atomic_load_n(&dump_signal, __ATOMIC_ACQUIRE);
        if (sig && sig != unblocked) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, sig);
            pthread_sigmask(SIG_UNBLOCK, &set, NULL);
            unblocked = sig;
        }
        uint32_t d = __atomic_load_n(&dump_requests, __ATOMIC_ACQUIRE);
        if (d != dumps_seen) {
            dumps_seen = d;
            green_dump_all_hubs();
            continue;
        }
        int64_t limit = __atomic_load_n(&threshold, __ATOMIC_RELAXED), wait = -1;
        if (limit > 0) {
            int64_t period = limit / 4;
            if (period < 2000000) period = 2000000;
            int64_t now = green_now_ns();
            if (now >= next_sample) {
                while (report_one_stall(now, limit)) {}
                next_sample = now + period;
            }
            wait = next_sample - now;
            if (wait > period) wait = period; // retuned meanwhile
        }
        futex_wait(&wake_word, seen, wait);
    }
    return NULL;
}

static int thread_state; ///< 0: not started, 1: started (atomic)
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

/// Start the monitor thread once. It blocks every signal but the dump signal,
/// so a signal the program handles never runs its handler on this thread.
/// (The preload library starts it before its hub exists, so that its
/// pthread_create makes this an OS thread, not a fiber.)
static int start_thread(void) {
    pthread_mutex_lock(&start_lock);
    int rc = 0;
    if (!__atomic_load_n(&thread_state, __ATOMIC_ACQUIRE)) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &attr, monitor_main, NULL);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc == 0) {
            pthread_setname_np(t, "green-monitor");
            __atomic_store_n(&thread_state, 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&start_lock);
    return rc;
}

int green_monitor_start(int64_t threshold_ns) {
    if (threshold_ns <= 0) return EINVAL;
    int64_t old = __atomic_exchange_n(&threshold, threshold_ns, __ATOMIC_RELAXED);
    if (old) {
        poke(); // already running: retuned
        return 0;
    }
    // Load the unwinder now, outside any signal handler.
    void *warm[2];
    backtrace(warm, 2);
    backtrace_signal = SIGRTMIN + 3;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = print_backtrace;
    sa.sa_flags = SA_RESTART | SA_ONSTACK; // the stalled call resumes as if nothing happened
    sigemptyset(&sa.sa_mask);
    green_libc_sigaction(backtrace_signal, &sa, NULL);
    int rc = start_thread();
    if (rc) __atomic_store_n(&threshold, 0, __ATOMIC_RELAXED);
    else poke();
    return rc;
}

int green_dump_on_signal(int signum) {
    if (signum <= 0 || signum >= NSIG) return EINVAL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_dump_signal;
    sa.sa_flags = SA_RESTART | SA_ONSTACK; // a call it lands in resumes untouched
    sigemptyset(&sa.sa_mask);
    if (green_libc_sigaction(signum, &sa, NULL) != 0) return errno;
    __atomic_store_n(&dump_signal, signum, __ATOMIC_RELEASE);
    int rc = start_thread();
    if (rc == 0) poke(); // it unblocks the signal at its next look
    return rc;
}

uint64_t green_monitor_reports(void) { return __atomic_load_n(&reports, __ATOMIC_RELAXED); }
