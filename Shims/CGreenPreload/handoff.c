// handoff.c — a hub whose OS thread is stuck in a call goes on without it.
//
// The shim marks the calls no fiber can wait for (a regular file's read or
// write, fsync, a blocking file lock: green_call_enter/leave in the core).
// The library's watcher thread (watcher.c) looks at every hub's call in
// progress; one it sees twice,
// PACE_MIN_NS or more apart, has blocked the hub's other fiber threads long
// enough: it retakes the hub and wakes a spare OS thread, which runs the hub
// from then on (with the hub's TLS: to the program, nothing moved). When the
// call returns, its OS thread becomes the spare in its turn (it takes the
// spare's stack and TLS), gives the fiber thread to a hub, and waits to be
// needed. Spares are made on demand, at most SPARES_MAX, and kept.
//
// The watcher's pace: PACE_MIN_NS while a call is in progress on any hub,
// doubling up to PACE_MAX_NS while none is. A call that begins while the
// watcher is at its slowest is handed off after PACE_MAX_NS + PACE_MIN_NS at
// most; one that follows others within a few milliseconds after 2 ×
// PACE_MIN_NS at most. GREEN_HANDOFF=0 turns hand-off off.
#include "preload.h"
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPARES_MAX 64
#define PACE_MIN_NS (50 * 1000L)
#define PACE_MAX_NS (2 * 1000000L)
#define SPARE_STACK (256 * 1024)

/// A spare: a stack and TLS of their own, worn by whichever OS thread last
/// left a hub (the one it was made with, at first).
typedef struct runner {
    void *tp;                       ///< its thread pointer (its TLS and descriptor)
    green_sched *_Atomic take;      ///< the hub it is to run
    _Atomic uint32_t woken;         ///< futex word: `take` was set
    struct runner *next;            ///< in the idle list
} runner;

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER; // libc's (REAL): the watcher and spares only
static runner *idle;        ///< spares waiting for a hub
static int spares;          ///< spares made
static uint64_t seen[PRELOAD_HUBS_MAX]; ///< the watcher's last look: each hub's call in progress
static long pace = PACE_MAX_NS;         ///< the watcher's time to its next look

static void block_all_signals(void) {
    sigset_t all;
    sigfillset(&all);
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, _NSIG / 8);
}

static void put_idle(runner *r) {
    REAL(pthread_mutex_lock)(&idle_lock);
    r->next = idle;
    idle = r;
    REAL(pthread_mutex_unlock)(&idle_lock);
}

/// Give fiber thread f, whose call outlived its hub's hold, to a hub.
static void place(green_fiber *f) {
    green_sched *to = hubs_count() > 1 ? hubs_pick() : hubs_main();
    hubs_rehome(f, to);
    green_fiber_adopt(to, f);
}

/// Run hub s (retaken) on this OS thread until the call it was taken from
/// returns; then this context goes on, as a spare, on that call's thread.
static void run_hub(runner *r, green_sched *s) {
    green_call *c = green_sched_claim(s);
    if (!c) return; // the call returned first: the hub is its thread's again
    int i = hubs_index_of(s);
    pid_t me = (pid_t)GREEN_SYSCALL(SYS_gettid), was = hubs_tid_of(s);
    // The two OS threads trade places: this one wears the hub's TLS (so its
    // descriptor's tid is this thread's), the one in the call this runner's.
    thread_block_set_tid(hubs_thread_pointer_of(s), me);
    thread_block_set_tid(r->tp, was);
    hubs_set_tid(i, me);
    char name[16];
    hubs_name(i, name);
    os_thread_set_name(name);
    gsig_load_for_hub(i); // a hub's thread takes the program's signals
    preload_log("hand-off: hub %d goes on on thread %d while thread %d is in a call", i, (int)me, (int)was);
    green_fiber *f = green_sched_run_claimed(s, c, r->tp);
    // On the thread whose call returned: a spare from now on.
    block_all_signals();
    // A spare keeps the name it had (a hub's: the program's), as a fiber
    // thread's call may end on it again.
    place(f);
}

static void runner_loop(runner *r) {
    for (;;) {
        while (!atomic_exchange(&r->woken, 0))
            GREEN_SYSCALL(SYS_futex, &r->woken, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        green_sched *s = atomic_exchange(&r->take, NULL);
        if (s) run_hub(r, s);
        put_idle(r);
    }
}

static void *spare_main(void *arg) {
    runner *r = arg;
    r->tp = __builtin_thread_pointer();
    os_thread_set_name("green-spare");
    void *volatile warm = malloc(16); // its malloc cache exists before a hub's fiber threads could copy it
    free(warm);
    runner_loop(r);
    return NULL;
}

/// An idle spare, or a new one (NULL: none can be had).
static runner *get_spare(void) {
    REAL(pthread_mutex_lock)(&idle_lock);
    runner *r = idle;
    if (r) idle = r->next;
    REAL(pthread_mutex_unlock)(&idle_lock);
    if (r || spares >= SPARES_MAX) return r;
    r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SPARE_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int err = PREAL(pthread_create)(&t, &attr, spare_main, r); // signals blocked: the watcher's mask
    pthread_attr_destroy(&attr);
    if (err) {
        free(r);
        preload_log("hand-off: no spare thread (%s)", strerror(err));
        return NULL;
    }
    spares++;
    preload_log("hand-off: %d spare thread(s)", spares);
    return r;
}

static void hand_off(green_sched *s, uint64_t seq) {
    runner *r = get_spare();
    if (!r) return;
    // From now on two OS threads may run the program's code (the spare, and
    // a handler on the thread in the call): the signal records take their
    // lock, once the sections that began without it have ended. (Not
    // sooner: with one hub the lock costs two system calls per change.)
    hubs_set_parallel();
    gsig_unlocked_drain();
    if (!green_sched_retake(s, seq)) { // the call returned meanwhile
        put_idle(r);
        return;
    }
    atomic_store(&r->take, s);
    atomic_store(&r->woken, 1);
    GREEN_SYSCALL(SYS_futex, &r->woken, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

long handoff_look(void) {
    int any = 0, n = hubs_count();
    for (int i = 0; i < n; i++) {
        green_sched *s = hubs_sched(i);
        uint64_t seq = s ? green_sched_call_in_progress(s) : 0;
        if (seq && seq == seen[i]) { // the same call as a look ago: long enough
            hand_off(s, seq);
            seq = 0;
        }
        seen[i] = seq;
        any |= seq != 0;
    }
    pace = any ? PACE_MIN_NS : (pace * 2 > PACE_MAX_NS ? PACE_MAX_NS : pace * 2);
    return pace;
}

int handoff_prepare(void) {
    static int enabled = -1;
    int first = enabled < 0;
    if (first) {
        const char *env = getenv("GREEN_HANDOFF");
        enabled = !(env && strcmp(env, "0") == 0) && thread_block_enabled();
    }
    // Every hub running now: a fork child's hubs start after the parent's asked.
    for (int i = 0; enabled && i < hubs_count(); i++) {
        green_sched *s = hubs_sched(i);
        if (s && green_sched_allow_handoff(s) != 0) enabled = 0; // not on this CPU
    }
    if (first) preload_log("hand-off of a hub stuck in a call: %s", enabled ? "on" : "off");
    return enabled;
}

void handoff_after_fork_in_child(void) {
    // Only the forking thread came along: no spares.
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    idle_lock = fresh;
    idle = NULL; // their records are leaked: a few dozen bytes each
    spares = 0;
    memset(seen, 0, sizeof seen); // the parent's calls, by its hubs' numbers
    pace = PACE_MAX_NS;
}
