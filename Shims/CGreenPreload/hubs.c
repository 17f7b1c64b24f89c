// hubs.c — `green run --hubs=N` (GREEN_HUBS): fiber threads spread over N
// hubs, each on an OS thread of its own, so that a program's threads run on
// N CPUs at once. By default N is the CPUs the process may run on, as a
// program's threads natively spread over them (one when fiber threads share
// their hub thread's TLS); `--hubs=1` runs every fiber thread on the main
// thread's hub (gevent's model).
//
// Hub 0 is the main thread's. The others start with the program's second
// thread (each an OS thread of the library's own that makes a hub and leaves
// its own context parked for good). pthread_create picks a hub round-robin
// and makes the new fiber thread there: its TLS copies that hub thread's tid
// and malloc cache (thread_block.c), which it then shares with the hub's
// other fiber threads only, and its fd waits, timers and futex waits are
// that hub's. A hub with nothing to run gets a ready fiber thread from a hub
// that has more than one (the core's green_sched_share): it moves while
// ready, never while running or waiting, and takes the new hub's tid and
// malloc cache with it.
//
// Signals: every hub's OS thread takes the program's signals, with the mask
// the threads want (sigmask.c); a handler for a thread of another hub runs
// on that thread when it next runs (signals.c).
#include "preload.h"
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct preload_hub {
    green_sched *_Atomic sched; ///< set once the hub runs
    pid_t tid;                  ///< its OS thread's kernel tid
    void *tp;                   ///< that thread's own thread pointer (its TLS, its malloc cache)
} preload_hub;

static preload_hub hubs[PRELOAD_HUBS_MAX];
static int wanted = 1;             ///< GREEN_HUBS, or the CPUs allowed
static _Atomic int running = 1;    ///< hubs started (hub 0 is the main thread's)
static _Atomic unsigned next_pick; ///< round-robin cursor
static _Atomic int started;        ///< the other hubs' threads were asked for
static _Atomic int failed;         ///< a hub's thread could not make its hub
static char main_name[16];         ///< the main thread's name (hub 0's OS thread's); in a fork child, the forking thread's

/// The CPUs this process may run on (its affinity mask), at least 1.
static int cpus_allowed(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

/// The core asks, on the giving hub's thread, whether a ready fiber may move
/// to `to`: a fiber thread may; it gets the new hub's tid and malloc cache.
int hubs_rehome(green_fiber *f, green_sched *to) {
    gthread *t = green_fiber_owner(f);
    if (!t || t->magic != GTHREAD_MAGIC) return 0;
    if (t->tp) thread_block_rehome(t, hubs_thread_pointer_of(to));
    t->hub = to;
    return 1;
}

void hubs_init(green_sched *main_hub) {
    hubs[0].sched = main_hub;
    hubs[0].tid = (pid_t)GREEN_SYSCALL(SYS_gettid);
    hubs[0].tp = green_sched_native_thread_pointer(main_hub);
    os_thread_name(main_name);
    const char *env = getenv("GREEN_HUBS");
    // A hub per CPU, when fiber threads have TLS of their own; when they
    // share their hub thread's (GREEN_THREAD_TLS=shared, a glibc or CPU the
    // library does not know), one hub unless asked: a thread that moved
    // would see another thread's TLS.
    long n = thread_block_enabled() ? cpus_allowed() : 1;
    if (env && strcmp(env, "cpus") == 0) n = cpus_allowed();
    else if (env && *env) {
        char *end;
        long asked = strtol(env, &end, 10);
        if (*end || asked < 1 || asked > PRELOAD_HUBS_MAX)
            preload_log("GREEN_HUBS=%s: expected 1 to %d, or cpus; using %ld", env, PRELOAD_HUBS_MAX, n);
        else n = asked;
    }
    wanted = n > PRELOAD_HUBS_MAX ? PRELOAD_HUBS_MAX : (int)n;
    if (wanted > 1) green_sched_share(main_hub, hubs_rehome);
    preload_log("%d hubs", wanted);
}

int hubs_count(void) { return atomic_load_explicit(&running, memory_order_acquire); }
int hubs_wanted(void) { return wanted; }
static _Atomic int parallel; ///< set for good before a second OS thread may run the program's code

void hubs_set_parallel(void) { atomic_store(&parallel, 1); }
int hubs_parallel(void) { return atomic_load(&parallel); } // sequentially consistent: see gsig_unlocked_begin
green_sched *hubs_main(void) { return hubs[0].sched; }

green_sched *hubs_sched(int i) { return atomic_load_explicit(&hubs[i].sched, memory_order_acquire); }

pid_t hubs_tid_of(green_sched *s) {
    int n = hubs_count();
    for (int i = 0; i < n; i++)
        if (hubs[i].sched == s) return hubs[i].tid;
    return hubs[0].tid;
}

void *hubs_thread_pointer_of(green_sched *s) {
    int n = hubs_count();
    for (int i = 0; i < n; i++)
        if (hubs[i].sched == s) return hubs[i].tp;
    return hubs[0].tp;
}

int hubs_index_of(green_sched *s) {
    int n = hubs_count();
    for (int i = 0; i < n; i++)
        if (hubs[i].sched == s) return i;
    return -1;
}

green_sched *hubs_pick(void) {
    int n = hubs_count();
    if (n == 1) return green_sched_current();
    // The hub with the fewest fiber threads (the main thread counts on hub
    // 0), looking from a round-robin start so that ties spread.
    unsigned start = atomic_fetch_add_explicit(&next_pick, 1, memory_order_relaxed);
    int best = -1;
    uint64_t best_load = UINT64_MAX;
    for (int k = 0; k < n; k++) {
        int i = (int)((start + 1 + (unsigned)k) % (unsigned)n);
        uint64_t load = green_sched_live_fibers(hubs[i].sched) + (i == 0);
        if (load < best_load) best = i, best_load = load;
    }
    return hubs[best].sched;
}

void hubs_set_tid(int i, pid_t tid) {
    if (i >= 0 && i < PRELOAD_HUBS_MAX) hubs[i].tid = tid;
}

void hubs_name(int i, char name[16]) {
    // Every hub's OS thread carries the program's name, as the main thread
    // does: a fiber thread reads its comm in /proc from the OS thread it
    // runs on, and a child it forks takes that name, which natively is the
    // program's for a thread the program did not name.
    (void)i;
    memcpy(name, main_name, 16);
}

/// A hub's OS thread: make the hub, say where it is, then park its own
/// context for good; the hub fiber runs the fiber threads given to it.
static void *hub_thread(void *arg) {
    int i = (int)(intptr_t)arg;
    sigset_t mask;
    gsig_applied_mask(&mask); // the threads' mask: this thread takes the program's signals too
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, _NSIG / 8);
    char name[16];
    hubs_name(i, name);
    os_thread_set_name(name);
    green_sched *s = green_sched_create();
    if (!s) {
        preload_log("hub %d: cannot start (%s)", i, strerror(errno));
        atomic_store(&failed, 1);
        return NULL;
    }
    preload_hub_setup(s);
    void *volatile warm = malloc(16); // this thread's malloc cache exists before fiber threads copy it
    free(warm);
    hubs[i].tid = (pid_t)GREEN_SYSCALL(SYS_gettid);
    hubs[i].tp = green_sched_native_thread_pointer(s);
    atomic_store_explicit(&hubs[i].sched, s, memory_order_release);
    // Share ready threads only once hubs_start counts this hub: a thread
    // moved here takes its tid and malloc cache from hubs[i] (hubs_rehome).
    while (hubs_count() <= i) GREEN_SYSCALL(SYS_sched_yield);
    gsig_reload_here(); // a mask change made since this thread's first load did not ask it
    green_sched_share(s, hubs_rehome);
    for (;;) green_sleep_until(GREEN_NO_DEADLINE, GREEN_PARK_UNINTERRUPTIBLE);
    return NULL;
}

void hubs_start(void) {
    if (wanted == 1 || atomic_load_explicit(&started, memory_order_acquire) || atomic_exchange(&started, 1)) return;
    hubs_set_parallel(); // before the first other hub's thread takes a signal
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int made = 1;
    for (int i = 1; i < wanted; i++) {
        pthread_t t;
        if (PREAL(pthread_create)(&t, &attr, hub_thread, (void *)(intptr_t)i) != 0) break;
        while (!hubs_sched(i) && !atomic_load(&failed)) GREEN_SYSCALL(SYS_sched_yield); // up in microseconds
        if (!hubs_sched(i)) break;
        made = i + 1;
        atomic_store_explicit(&running, made, memory_order_release);
    }
    pthread_attr_destroy(&attr);
    thread_block_wrap_setxid();
    if (made < wanted) preload_log("hubs: %d of %d started", made, wanted);
}

void hubs_after_fork_in_child(void) {
    // Only the forking thread lives on: its hub is the child's hub 0.
    green_sched *s = green_sched_current();
    int i = hubs_index_of(s);
    if (i > 0) hubs[0] = hubs[i];
    for (int k = 1; k < PRELOAD_HUBS_MAX; k++) atomic_store(&hubs[k].sched, NULL);
    hubs[0].tid = (pid_t)GREEN_SYSCALL(SYS_gettid);
    // The child is named after the thread that forked it, as a clone of that
    // thread would be, and so are the hubs it starts (its threads' comm).
    gthread *self = gthread_current();
    if (self) {
        memcpy(main_name, self->name, sizeof main_name);
        os_thread_set_name(main_name);
    } else {
        os_thread_name(main_name); // main's, as it is now
    }
    atomic_store(&running, 1);
    atomic_store(&failed, 0);
    atomic_store(&started, 0); // the child starts its other hubs with its second thread, as the parent did
}
