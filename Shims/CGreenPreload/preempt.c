// preempt.c — a fiber thread that runs for long without making a call that
// parks (a spin-wait on a flag another thread sets, a CPU-bound loop) is
// preempted, as the kernel preempts a thread, so the program's other threads
// still run: spin-waits end, and a timed wait (CPython's GIL request) fires.
//
// The library's watcher thread (watcher.c, started with the program's
// second thread) looks at the hubs every BUSY_SLICE_NS while a fiber thread
// runs. When the same one has run BUSY_SLICE_NS while others of its hub
// were ready (the kernel's share of a CPU between runnable threads), or
// SLICE_NS while none was (the hub's timers and fds still get polled), it
// sends the hub's OS thread PREEMPT_SIGNAL, tagged as ours; the handler, on
// that fiber's stack, puts it at the back of the ready queue
// (green_preempt_running) and the hub polls and runs the others.
//
// Only code that holds no lock the hub itself needs is preempted: the
// handler looks at where the signal landed and leaves alone libc and the
// dynamic linker (their internal locks are kernel futexes that a fiber of the
// same hub would wait on for ever), libev and the vDSO (a park runs libev on
// the fiber's stack), the unwinder, this library, a section of the
// library's that holds a lock or runs a handler with another thread's TLS
// (preload_preempt_blocked), and a thread holding a standard stream's lock;
// and it preempts only the fiber thread the watcher saw run the whole slice
// (the hub has not switched since). The program's code, its other libraries
// and JIT code are preempted. A fiber thread stopped elsewhere is looked at again a slice
// later. What stays: program code that runs while libc or the dynamic
// loader holds a lock for it (a callback of dl_iterate_phdr or of a fork
// handler, a loop under flockfile of a stream other than the standard
// three) and is preempted there makes another thread that needs that lock
// wait for ever; and a dlopen'ed library's constructor preempted while the
// loader's lock is held lets another thread of its hub into the loader
// (fiber threads share the hub thread's tid, which glibc's recursive locks
// take as their owner). Telling which fiber thread took the lock would need
// a look at every switch; the loader itself (ld.so) is never preempted.
//
// PREEMPT_SIGNAL is glibc's SIGSETXID, queued with a tag (the hub's entry in
// hub_state): glibc's handler, which the library's wraps (thread_block.c),
// gets the rest. Being glibc's, the program can neither handle nor block it
// (glibc refuses), so none of its own signals is touched and a program with a
// SIGURG handler of its own (haproxy) is preempted too (with SIGURG, Go's
// choice, one could swallow the other: such a program was left alone and
// its spin-waits never ended). Being a real-time signal, two are never
// merged into one; and since one pending across an exec would end the new
// program (SIG_DFL), an exec first holds the sends (preempt_hold). At most
// one is in flight per hub. GREEN_PREEMPT=0 turns preemption off.
#include "preload.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define PREEMPT_SIGNAL 33 // glibc's SIGSETXID (SIGRTMIN + 1): see above
#define SLICE_NS (10 * 1000000L)    ///< how long one fiber thread runs before the hub polls its timers and fds
#define BUSY_SLICE_NS (2 * 1000000L) ///< ...and before another one gets a turn, when others are ready
#define IDLE_LOOK_NS (80 * 1000000L) ///< the watcher's pace while the hub waits for events

__thread int preload_preempt_blocked __attribute__((tls_model("initial-exec")));
/// What the watcher knows of each hub: the switch count it saw last, and the
/// one it saw for a whole slice (the handler preempts only if it still holds).
static struct {
    uint64_t last;
    int64_t since; ///< when the watcher first saw the fiber thread running now (ns)
    int64_t cpu;   ///< the hub's OS thread's CPU time when the watcher last asked (ns)...
    pid_t cpu_tid; ///< ...and that thread (another after a hand-off)
    _Atomic uint64_t sampled;
    _Atomic int64_t in_flight; ///< when the signal not yet taken was sent (ns), or 0
} hub_state[PRELOAD_HUBS_MAX]; // an entry's address is the si_value of its signals
static pid_t pid;
static _Atomic int holds;   ///< execs under way (preempt_hold): nothing is sent
static _Atomic int sending; ///< the watcher is between its look at `holds` and its send

// ---- where a signal may preempt -------------------------------------------------

struct ev_loop;
int ev_run(struct ev_loop *loop, int flags); // only its address: which object is libev (ev.h clashes with link.h)
void *__tls_get_addr(void *); // only its address: the dynamic loader's

static struct link_map *libc_map, *ld_map, *self_map, *libev_map;
static uintptr_t vdso_base;

static struct link_map *map_of(const void *address) {
    Dl_info info;
    struct link_map *map = NULL;
    if (!dladdr1(address, &info, (void **)&map, RTLD_DL_LINKMAP)) return NULL;
    return map;
}

/// Is `pc` in code that may be preempted? Async-signal-safe: _dl_find_object
/// is, and the rest reads memory.
static int preemptible_at(void *pc) {
    struct dl_find_object found;
    if (_dl_find_object(pc, &found) != 0) return 1; // in no object: JIT code
    struct link_map *m = found.dlfo_link_map;
    // libev runs on fibers' stacks too (a park starts and stops its
    // watchers), and the vDSO's clock is called from inside it.
    if (m == libc_map || m == ld_map || m == self_map || m == libev_map || (uintptr_t)m->l_addr == vdso_base) return 0;
    const char *name = m->l_name;
    return !(name && (strstr(name, "libgcc_s.so") || strstr(name, "libunwind"))); // they hold the loader's lock
}

/// Does the running thread hold the lock of a standard stream (flockfile,
/// or a custom printf conversion)? Another thread's printf would then wait
/// for it in the kernel, on the hub's own OS thread. glibc's stream lock is
/// {int lock; int cnt; void *owner} with the owner's descriptor (glibc's
/// pthread_self). (Other streams' locks cannot be found.)
static int holds_std_stream(void) {
    void *self = (void *)PREAL(pthread_self)();
    FILE *streams[] = {stdout, stderr, stdin};
    for (unsigned i = 0; i < sizeof streams / sizeof *streams; i++) {
        const char *lock = streams[i] ? (const char *)streams[i]->_lock : NULL;
        if (lock && *(void *const volatile *)(lock + 8) == self) return 1;
    }
    return 0;
}

static void *interrupted_pc(void *context) {
    const ucontext_t *uc = context;
#if defined(__x86_64__)
    return (void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)uc->uc_mcontext.pc;
#else
    (void)uc;
    return NULL;
#endif
}

int preempt_on_signal(siginfo_t *info, void *context) {
    uintptr_t tag = (uintptr_t)info->si_value.sival_ptr, first = (uintptr_t)&hub_state[0];
    if (info->si_code != SI_QUEUE || info->si_pid != pid || tag < first ||
        tag >= (uintptr_t)&hub_state[PRELOAD_HUBS_MAX] || (tag - first) % sizeof hub_state[0])
        return 0; // glibc's own
    atomic_store(&hub_state[(tag - first) / sizeof hub_state[0]].in_flight, 0);
    green_sched *s = green_sched_current();
    // Only the fiber thread the watcher saw run the whole slice: if the hub
    // switched since, the one running now has just begun (and may be
    // finishing a park inside the runtime).
    int hub = s ? hubs_index_of(s) : -1;
    if (hub < 0 || green_sched_switch_count(s) != atomic_load_explicit(&hub_state[hub].sampled, memory_order_relaxed))
        return 1;
    int saved = errno;
    void *pc = interrupted_pc(context);
    if (pc && !preload_preempt_blocked && preemptible_at(pc) && !holds_std_stream()) {
        gsig_handler_entry entry = gsig_handler_enter();
        green_preempt_running();
        // sigreturn reloads the mask saved at delivery: if the threads'
        // masks (or the one this hub loaded) changed while others ran, the
        // one they want now; and the alternate signal stack of the OS thread
        // it runs on now (the thread may have moved to another hub meanwhile).
        int now = hubs_index_of(green_sched_current());
        gsig_handler_return(entry, context);
        if (hub != now) sigaltstack(NULL, &((ucontext_t *)context)->uc_stack);
    }
    errno = saved;
    return 1;
}

// ---- the watcher ------------------------------------------------------------------

/// Signal hub i's OS thread, unless its last signal is still in flight:
/// real-time signals queue, and a thread that keeps them blocked for a
/// while (a hand-off's stuck call) would collect one per look. One not
/// taken in IN_FLIGHT_MAX_NS is taken as lost.
#define IN_FLIGHT_MAX_NS (100 * 1000000L)
static void preempt_hub(int i, pid_t hub_tid, int64_t now) {
    int64_t sent = atomic_load(&hub_state[i].in_flight);
    if (sent && now - sent < IN_FLIGHT_MAX_NS) return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = PREEMPT_SIGNAL;
    si.si_code = SI_QUEUE;
    si.si_pid = pid;
    si.si_uid = getuid();
    si.si_value.sival_ptr = (void *)&hub_state[i];
    atomic_store(&hub_state[i].in_flight, now);
    if (GREEN_SYSCALL(SYS_rt_tgsigqueueinfo, (long)pid, (long)hub_tid, (long)PREEMPT_SIGNAL, &si) != 0)
        atomic_store(&hub_state[i].in_flight, 0); // the hub's thread may have ended
}

/// Has hub i's OS thread been on a CPU (RAN_NS or more) since the watcher
/// last asked, rather than asleep in the kernel? A fiber thread inside a call the shim cannot
/// park (a regular file, a raw system call) is not spinning: a signal would
/// only interrupt that call. Read from the thread's CPU-time clock (the
/// kernel's per-thread clock: no fd is opened, which the program could see).
#define RAN_NS (50 * 1000L)
static int hub_ran(int i, pid_t hub_tid) {
    clockid_t clock = (clockid_t)((~(unsigned)hub_tid << 3) | 6); // the kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)
    struct timespec t;
    if (GREEN_SYSCALL(SYS_clock_gettime, (long)clock, &t) != 0) return 1; // cannot tell: assume it runs
    int64_t cpu = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec, before = hub_state[i].cpu;
    int same = hub_state[i].cpu_tid == hub_tid;
    hub_state[i].cpu = cpu;
    hub_state[i].cpu_tid = hub_tid;
    return !same || cpu - before >= RAN_NS; // another thread's clock before: cannot tell, assume it runs
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// A signal pending when a thread execs stays pending for the new program,
// which takes it with SIG_DFL: a real-time signal's ends the process. So an
// exec holds the watcher's sends first (the watcher sets `sending` before it
// reads `holds`, the exec sets `holds` before it reads `sending`: one of
// them sees the other), and a signal sent before is queued for its thread
// by then: if it is the caller's, the next return from a system call takes it.

void preempt_hold(int begin) {
    // Not in a vfork child, which shares this memory (and the vforking
    // thread's TLS) but is a task of its own that the watcher never signals:
    // its exec would leave the hold on in the parent for good.
    if ((pid_t)GREEN_SYSCALL(SYS_getpid) != pid) return;
    if (!begin) {
        atomic_fetch_sub(&holds, 1);
        preload_preempt_blocked--;
        return;
    }
    // Not preempted from here: the other hubs' threads go unpreempted until
    // the exec, and one could spin waiting for this thread.
    preload_preempt_blocked++;
    atomic_fetch_add(&holds, 1);
    while (atomic_load(&sending)) GREEN_SYSCALL(SYS_sched_yield);
    GREEN_SYSCALL(SYS_getpid); // its return takes a signal pending for this thread
}

void preempt_after_fork_in_child(void) {
    atomic_store(&sending, 0); // the watcher did not come along
    atomic_store(&holds, 0);   // nor did the other threads' execs
    // The other threads' signals in flight did not come along.
    for (int i = 0; i < PRELOAD_HUBS_MAX; i++) atomic_store(&hub_state[i].in_flight, 0);
}

long preempt_look(void) {
    static long pace = SLICE_NS;
    int any_running = 0, n = hubs_count();

    int64_t now = now_ns();
    for (int i = 0; i < n; i++) {
        green_sched *s = hubs_sched(i);
        if (!s) continue;
        uint64_t switches;
        int running = green_sched_fiber_streak(s, &switches);
        pid_t tid = hubs_tid_of(s);
        if (!running || switches != hub_state[i].last) hub_state[i].since = now; // a new streak (or none)
        int ran = running && hub_ran(i, tid); // on a CPU since the last look (not asleep in a call)
        // Others waiting for their turn get it after a short slice, as the
        // kernel shares a CPU between runnable threads; with none waiting the
        // hub still polls its timers and fds every SLICE_NS.
        int64_t slice = green_sched_has_ready(s) ? BUSY_SLICE_NS : SLICE_NS;
        if (running && now - hub_state[i].since >= slice && ran) {
            atomic_store_explicit(&hub_state[i].sampled, switches, memory_order_relaxed);
            atomic_store(&sending, 1); // before `holds` is read: see preempt_hold
            if (!atomic_load(&holds) && thread_block_setxid_wrapped()) preempt_hub(i, tid, now); // else glibc's would ignore it
            atomic_store(&sending, 0);
            hub_state[i].since = now;
        }
        hub_state[i].last = switches;
        any_running |= running;
    }
    // Slower while the hubs wait for events: a fiber thread that starts
    // running then is preempted within a pace and a slice.
    pace = any_running ? BUSY_SLICE_NS : (pace * 2 > IDLE_LOOK_NS ? IDLE_LOOK_NS : pace * 2);
    return pace;
}

int preempt_prepare(void) {
    static int decided, enabled;
    if (!decided) {
        decided = 1;
        const char *env = getenv("GREEN_PREEMPT");
        enabled = !(env && strcmp(env, "0") == 0);
        libc_map = map_of((void *)&getpid);
        ld_map = map_of((void *)&__tls_get_addr); // ld.so's own (libc.so.6 defines _dl_find_object)
        self_map = map_of((void *)&preempt_prepare);
        libev_map = map_of((void *)&ev_run);
        vdso_base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
        if (!libc_map || !ld_map || !self_map || !libev_map) enabled = 0;
        preload_log("preemption of fiber threads that run %ld ms: %s", SLICE_NS / 1000000, enabled ? "on" : "off");
    }
    if (!enabled) return 0;
    pid = getpid();
    memset(hub_state, 0, sizeof hub_state); // a fork child's hub 0 may have been another hub
    return 1;
}
