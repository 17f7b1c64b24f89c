// sigmask.c — every fiber thread has a signal mask of its own, as a thread
// has. The kernel sees one OS thread (the hub's), so:
//
// - The OS thread blocks a signal only while every fiber thread blocks it
//   (a count per signal of the threads that do). A process-directed
//   signal then stays pending in the kernel exactly while no thread would
//   take it; once one unblocks it, the kernel delivers it.
// - A delivered signal is for a thread that does not block it (main, else
//   the current one, else the first that does not), as the kernel picks;
//   signals.c runs the handler on that thread's own stack and TLS, and only
//   that thread's blocking call is interrupted.
// - A signal sent to one thread (pthread_kill, tgkill) goes through the
//   kernel to the OS thread with a note naming its target; if the target
//   blocks it, it stays pending for that thread alone and is raised again
//   when the thread unblocks it (or taken by its sigwait).
// - exec, posix_spawn, popen and system give the child the caller's mask.
//
// The main thread takes part with a record of its own; native threads (the
// thread pool, a library's own threads) keep their kernel masks.
#include "preload.h"
#include "../CGreenShim/shim.h"
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KERNEL_SIGSET 8 // the kernel's sigset_t: 64 bits
#define SIGCANCEL 32    // glibc's own: never blockable by the program
#define SIGSETXID 33

static gsig main_thread;
// Signals 1..64 are bits 0..63, as in the kernel's sigset (glibc's first word).
static int threads_counted;         ///< live fiber threads, main too
static int blocked_by[64];          ///< of them, those that block each signal
static uint64_t blocked_by_some;    ///< the signals some of them block (blocked_by > 0)
static sigset_t applied;            ///< the mask last loaded into the OS thread
static _Atomic uint64_t applied_word; ///< its 64 bits, for readers without the lock (a handler's return)
static volatile sig_atomic_t applied_generation; ///< bumped at each load (signals.c fixes a handler's saved mask)
static gsig *_Atomic notes[NSIG];   ///< the target of a signal sent to one thread, until delivered
static _Atomic uint64_t ever_noted; ///< the signals notes[] was ever set for (a finished thread looks at those alone)
static sigset_t process_pending;    ///< delivered while no thread would take it: raised again on unblock
static int ready;                   ///< the main thread's record is set up
static pid_t owner_pid;             ///< the process these records are for: a vfork child (same memory) must not touch them
static const shim_thread_hooks hooks; // below: what the shim asks of this file

#define BIT(sig) ((uint64_t)1 << ((sig) - 1))
/// What no thread may block: SIGKILL, SIGSTOP and glibc's own two, as glibc.
#define UNBLOCKABLE (BIT(SIGKILL) | BIT(SIGSTOP) | BIT(SIGCANCEL) | BIT(SIGSETXID))

static inline uint64_t bits_of(const sigset_t *set) {
    uint64_t b;
    memcpy(&b, set, sizeof b);
    return b;
}

static inline void set_bits(sigset_t *set, uint64_t b) {
    sigemptyset(set);
    memcpy(set, &b, sizeof b);
}

/// Does some live thread leave `sig` unblocked?
static inline int someone_takes(int sig) { return blocked_by[sig - 1] < threads_counted; }

static void load_mask(const sigset_t *m) {
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, m, NULL, KERNEL_SIGSET);
}


// ---- more than one hub (hubs.c), or a hub handed off (handoff.c) ---------------------
//
// Then fiber threads of every hub change these records at once, so they are
// changed under a lock (held for a few loads and stores, never across a
// park). Every hub's OS thread takes the program's signals, with the mask
// the threads want loaded; handlers take the lock too, so it is held with
// the holder's signals blocked. A hub that changes the mask loads it and
// asks the others to (gsig_reload_if_asked, from their notify callbacks).

static _Atomic int locked;
static _Atomic int reload_generation;       ///< the mask generation every hub should have loaded
static int hub_loaded[PRELOAD_HUBS_MAX];    ///< the generation each hub's OS thread loaded last
static __thread int holding __attribute__((tls_model("initial-exec"))); ///< this thread holds the lock: apply() leaves the load to the unlock

typedef struct lock_state {
    int held;        ///< the lock was taken (hubs_parallel), with signals blocked
    sigset_t before; ///< the mask before
} lock_state;

// With one OS thread for the program's code the records are changed without
// the lock; a first hand-off, which makes a second one, waits for every such
// section to end first (gsig_unlocked_drain) once the lock is taken by all.
static _Atomic int unlocked_users;

int gsig_unlocked_begin(void) {
    if (hubs_parallel()) return 0;
    atomic_fetch_add(&unlocked_users, 1); // then look again: hand_off sets `parallel` then drains (both sequentially consistent)
    if (!hubs_parallel()) return 1;
    atomic_fetch_sub(&unlocked_users, 1);
    return 0;
}

void gsig_unlocked_end(void) { atomic_fetch_sub(&unlocked_users, 1); }

void gsig_unlocked_drain(void) {
    while (atomic_load(&unlocked_users)) GREEN_SYSCALL(SYS_sched_yield);
}

static void state_lock(lock_state *l) {
    l->held = !gsig_unlocked_begin();
    if (!l->held) return;
    sigset_t all;
    sigfillset(&all);
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &all, &l->before, KERNEL_SIGSET);
    int expected = 0;
    while (!atomic_compare_exchange_weak_explicit(&locked, &expected, 1, memory_order_acquire, memory_order_relaxed)) {
        expected = 0;
        GREEN_SYSCALL(SYS_sched_yield);
    }
    holding = 1;
}

/// Generation a is older than b (they wrap around: compared as a distance).
static inline int gen_before(int a, int b) { return (int32_t)((uint32_t)a - (uint32_t)b) < 0; }

/// Load the threads' mask of generation `gen` into this OS thread, and note
/// that generation for its hub: the one read with the mask under the lock,
/// not the one current now (a change made since, on another hub, skips
/// asking a hub that notes it had loaded that change: it would keep the
/// older mask, maybe taking with its default action a signal every thread
/// blocks — BIND's kill(getpid(), SIGTERM) ended host that way).
static void load_here(const sigset_t *m, int gen) {
    load_mask(m);
    int i = hubs_index_of(green_sched_current());
    if (i >= 0) __atomic_store_n(&hub_loaded[i], gen, __ATOMIC_RELAXED);
}

/// Ask every other hub to load the threads' mask (generation `gen`). The
/// generation asked for only moves forward: a hub that loaded an older one
/// last must not lower it, or the others would not load the newer one.
static void ask_others(int gen) {
    int asked = atomic_load_explicit(&reload_generation, memory_order_relaxed);
    while (gen_before(asked, gen) && !atomic_compare_exchange_weak(&reload_generation, &asked, gen)) {
    }
    green_sched *self = green_sched_current();
    for (int i = 0, n = hubs_count(); i < n; i++) {
        green_sched *h = hubs_sched(i);
        if (h && h != self && __atomic_load_n(&hub_loaded[i], __ATOMIC_RELAXED) != gen) green_sched_notify(h);
    }
}

/// `in_handler`: put back the handler's own mask (its sigreturn loads the
/// threads' one); else this OS thread loads the threads' mask as it is now.
static void state_unlock(lock_state *l, int in_handler) {
    if (!l->held) {
        gsig_unlocked_end();
        return;
    }
    holding = 0;
    sigset_t now = applied;
    int gen = applied_generation;
    atomic_store_explicit(&locked, 0, memory_order_release);
    if (in_handler) {
        GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &l->before, NULL, KERNEL_SIGSET);
    } else {
        load_here(&now, gen);
        if (atomic_load_explicit(&reload_generation, memory_order_relaxed) != gen) ask_others(gen);
    }
}

/// The threads' mask changed: load it into this OS thread, and the others.
static void load_applied(void) {
    if (holding) return; // state_unlock loads it
    load_here(&applied, applied_generation);
    if (hubs_count() > 1) ask_others(applied_generation);
}

void gsig_reload_here(void) {
    lock_state l;
    state_lock(&l);
    state_unlock(&l, 0); // which loads the mask here
    if (!l.held) load_here(&applied, applied_generation);
}

void gsig_reload_if_asked(void) {
    int i = hubs_index_of(green_sched_current());
    if (i < 0 || !gen_before(__atomic_load_n(&hub_loaded[i], __ATOMIC_RELAXED),
                             atomic_load_explicit(&reload_generation, memory_order_relaxed)))
        return;
    gsig_reload_here();
}

/// A new threads' mask (the lock held): the word first, then the generation,
/// so a reader that reads them the other way round gets a mask at least as
/// new as the generation it read.
static void set_applied(uint64_t bits) {
    set_bits(&applied, bits);
    atomic_store_explicit(&applied_word, bits, memory_order_release);
    __atomic_store_n(&applied_generation, applied_generation + 1, __ATOMIC_RELEASE);
}

/// Load into the OS thread the signals every fiber thread blocks. Only the
/// signals some thread blocks are looked at: usually none.
static void apply(void) {
    uint64_t all = 0;
    for (uint64_t some = blocked_by_some; some; some &= some - 1) {
        int i = __builtin_ctzll(some);
        if (blocked_by[i] == threads_counted) all |= (uint64_t)1 << i;
    }
    if (all == bits_of(&applied)) return;
    set_applied(all);
    load_applied();
}


/// Count a thread with `mask` in (+1) or out (-1).
static void count(const sigset_t *mask, int delta) {
    threads_counted += delta;
    for (uint64_t b = bits_of(mask) & ~UNBLOCKABLE; b; b &= b - 1) {
        int i = __builtin_ctzll(b);
        blocked_by[i] += delta;
        if (blocked_by[i]) blocked_by_some |= (uint64_t)1 << i;
        else blocked_by_some &= ~((uint64_t)1 << i);
    }
}

/// Note `g` as the thread a signal about to be sent is for.
static void note_target(int sig, gsig *g) {
    atomic_fetch_or(&ever_noted, BIT(sig));
    atomic_store(&notes[sig], g);
}

/// Raise again, for the kernel to deliver now, what `g` no longer blocks:
/// its own pending signals (through a hub thread, noted for `g`), and the
/// process' that no thread took before. The caller's own are raised on the
/// OS thread running it, whichever hub that is, so that the handler runs
/// before pthread_sigmask returns, as natively.
static void raise_unblocked(gsig *g) {
    green_sched *running = g == gsig_current() ? green_sched_current() : NULL;
    pid_t via = hubs_tid_of(running ? running : hubs_main());
    for (uint64_t b = bits_of(&g->pending) & ~bits_of(&g->mask); b; b &= b - 1) {
        int sig = __builtin_ctzll(b) + 1;
        sigdelset(&g->pending, sig);
        note_target(sig, g);
        GREEN_SYSCALL(SYS_tgkill, (long)getpid(), (long)via, (long)sig);
    }
    for (uint64_t b = bits_of(&process_pending); b; b &= b - 1) {
        int sig = __builtin_ctzll(b) + 1;
        if (!someone_takes(sig)) continue;
        sigdelset(&process_pending, sig);
        GREEN_SYSCALL(SYS_kill, (long)getpid(), (long)sig);
    }
}

/// Change g's mask (never SIGKILL, SIGSTOP or glibc's own two, as glibc).
static void set_mask(gsig *g, const sigset_t *m) {
    sigset_t next;
    set_bits(&next, bits_of(m) & ~UNBLOCKABLE);
    lock_state l;
    state_lock(&l);
    count(&g->mask, -1);
    g->mask = next;
    count(&g->mask, +1);
    apply();
    raise_unblocked(g);
    state_unlock(&l, 0);
}

// ---- records ---------------------------------------------------------------------

void gsig_init_main(void) {
    sigset_t now;
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, NULL, &now, KERNEL_SIGSET);
    main_thread.mask = now;
    sigemptyset(&main_thread.pending);
    main_thread.fiber = green_sched_root(green_sched_current());
    main_thread.tp = NULL;
    applied = now;
    atomic_store(&applied_word, bits_of(&now));
    count(&main_thread.mask, +1);
    owner_pid = (pid_t)GREEN_SYSCALL(SYS_getpid);
    ready = 1;
    shim_threads = &hooks;
}

gsig *gsig_main(void) { return ready ? &main_thread : NULL; }

gsig *gsig_current(void) {
    // In a vfork child (posix_spawn, CPython's subprocess) the parent's memory
    // is the child's: its mask calls are its own, straight to the kernel.
    if (!ready || (pid_t)GREEN_SYSCALL(SYS_getpid) != owner_pid) return NULL;
    gthread *t = gthread_current();
    if (t) return &t->sig;
    green_sched *s = green_sched_current();
    green_fiber *f = green_fiber_current();
    return (s && f && f == green_sched_root(s) && main_thread.fiber == f) ? &main_thread : NULL;
}

void gsig_thread_started(gsig *g, green_fiber *f, void *tp) {
    gsig *creator = gsig_current();
    if (creator) g->mask = creator->mask; // a new thread inherits its creator's mask
    else sigemptyset(&g->mask);
    sigemptyset(&g->pending);
    g->fiber = f;
    g->tp = tp;
    lock_state l;
    state_lock(&l);
    count(&g->mask, +1);
    apply();
    state_unlock(&l, 0);
}

void gsig_thread_finished(gsig *g) {
    preload_forget_deferred_signals(g);
    for (uint64_t b = atomic_load(&ever_noted); b; b &= b - 1) {
        int sig = __builtin_ctzll(b) + 1;
        gsig *mine = g;
        if (atomic_load_explicit(&notes[sig], memory_order_relaxed) == g) // signals sent to it die with it
            atomic_compare_exchange_strong(&notes[sig], &mine, NULL);
    }
    lock_state l;
    state_lock(&l);
    count(&g->mask, -1);
    sigfillset(&g->mask);
    apply();
    state_unlock(&l, 0);
}

void gsig_after_fork_in_child(gsig *self) {
    owner_pid = (pid_t)GREEN_SYSCALL(SYS_getpid);
    atomic_store(&locked, 0); // another hub's thread may have held it at the fork
    holding = 0;
    memset(hub_loaded, 0, sizeof hub_loaded);
    atomic_store(&reload_generation, 0);
    // Only the forking thread lives on: it alone counts.
    memset(blocked_by, 0, sizeof blocked_by);
    blocked_by_some = 0;
    threads_counted = 0;
    for (int sig = 1; sig < NSIG; sig++) atomic_store(&notes[sig], NULL);
    atomic_store(&ever_noted, 0);
    sigemptyset(&process_pending);
    if (self != &main_thread) main_thread.fiber = NULL; // gone
    if (self) {
        sigemptyset(&self->pending);
        count(&self->mask, +1);
    }
    apply();
    load_mask(&applied); // also when unchanged: a fork made on another hub's thread blocked every signal
}

// ---- delivery (called by signals.c's handler wrapper) ---------------------------------

/// Faults are the faulting thread's.
static int is_fault(int sig, const siginfo_t *info) {
    return info->si_code > 0 &&
           (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGSYS);
}

/// `sig`, now pending for `g`: a sigwait for it that g is parked in looks
/// again. Any other wait goes on, as natively a blocked signal ends none.
/// (One that runs is in no wait: nothing is noted for its next call.)
static void wake_sigwait(gsig *g, int sig) {
    if (g->in_sigwait && sigismember(&g->sigwait_set, sig) && g->fiber && g->fiber != green_fiber_current())
        green_fiber_interrupt_syscall(g->fiber);
}

/// The kernel's choice for a process-directed signal: the main thread when
/// it does not block it, else another thread that does not.
static gsig *first_taker(int sig) {
    if (main_thread.fiber && !sigismember(&main_thread.mask, sig)) return &main_thread;
    gsig *cur = gsig_current();
    if (cur && !sigismember(&cur->mask, sig)) return cur;
    return gthread_first_sig_taker(sig);
}

static gsig *pick_target(int sig, const siginfo_t *info);

gsig *gsig_pick_target(int sig, const siginfo_t *info) {
    if (!ready || sig <= 0 || sig >= NSIG) return NULL;
    lock_state l;
    state_lock(&l);
    gsig *g = pick_target(sig, info);
    state_unlock(&l, 1);
    return g;
}

static gsig *pick_target(int sig, const siginfo_t *info) {
    gsig *cur = gsig_current();
    gsig *g;
    if (is_fault(sig, info)) return cur ? cur : &main_thread;
    if (info->si_code == SI_TKILL && info->si_pid == getpid()) {
        // pthread_kill sends to hub 0's thread with a note; on another
        // hub's thread it is raise() or abort(), which signal the thread itself.
        green_sched *here = green_sched_current();
        g = here && here != hubs_main() ? NULL : atomic_exchange(&notes[sig], NULL);
        if (!g) g = cur ? cur : &main_thread; // raise(), abort(): glibc signals the thread itself
    } else if (sig == SIGPIPE && info->si_code == SI_USER && info->si_pid == getpid() && cur &&
               !sigismember(&cur->mask, sig)) {
        g = cur; // the kernel's, for a write on a pipe or socket with no reader: the writing thread's
        return g;
    } else if (info->si_code == SI_TKILL) {
        g = &main_thread; // another process named the main thread's tid
    } else {
        g = first_taker(sig);
        if (!g) {
            sigaddset(&process_pending, sig); // nobody takes it now: again when someone unblocks it,
            gsig *waiter = main_thread.in_sigwait && sigismember(&main_thread.sigwait_set, sig)
                               ? &main_thread : gthread_sigwaiter(sig);
            if (waiter) wake_sigwait(waiter, sig); // or a sigwait for it takes it
            return NULL;
        }
        return g;
    }
    if (sigismember(&g->mask, sig)) { // its target blocks it: pending for that thread alone
        sigaddset(&g->pending, sig);
        wake_sigwait(g, sig);
        return NULL;
    }
    return g;
}

int gsig_pend_if_blocked(gsig *g, int sig) {
    lock_state l;
    state_lock(&l);
    int blocked = sigismember(&g->mask, sig);
    if (blocked) sigaddset(&g->pending, sig);
    state_unlock(&l, 0);
    return blocked;
}

void gsig_load_for_hub(int hub) {
    int gen = __atomic_load_n(&applied_generation, __ATOMIC_ACQUIRE);
    sigset_t m;
    set_bits(&m, atomic_load_explicit(&applied_word, memory_order_acquire)); // as new as gen at least
    load_mask(&m);
    if (hub >= 0 && hub < PRELOAD_HUBS_MAX) __atomic_store_n(&hub_loaded[hub], gen, __ATOMIC_RELAXED);
}

void gsig_applied_mask(sigset_t *out) { set_bits(out, atomic_load_explicit(&applied_word, memory_order_acquire)); }

gsig_handler_entry gsig_handler_enter(void) {
    int hub = hubs_index_of(green_sched_current());
    return (gsig_handler_entry){
        .generation = __atomic_load_n(&applied_generation, __ATOMIC_ACQUIRE),
        .hub = hub,
        .loaded = hub >= 0 ? __atomic_load_n(&hub_loaded[hub], __ATOMIC_RELAXED) : 0,
    };
}

void gsig_handler_return(gsig_handler_entry e, void *context) {
    if (!context) return;
    int hub = hubs_index_of(green_sched_current());
    int gen = __atomic_load_n(&applied_generation, __ATOMIC_ACQUIRE);
    int loaded = hub >= 0 ? __atomic_load_n(&hub_loaded[hub], __ATOMIC_RELAXED) : e.loaded;
    // Nothing changed: what sigreturn puts back is what this OS thread had.
    if (gen == e.generation && hub == e.hub && loaded == e.loaded) return;
    // Else the threads' mask of now (read after its generation: as new at
    // least), noted as this hub's: a change made after it asks it again.
    set_bits(&((ucontext_t *)context)->uc_sigmask, atomic_load_explicit(&applied_word, memory_order_acquire));
    if (hub >= 0) __atomic_store_n(&hub_loaded[hub], gen, __ATOMIC_RELAXED);
}

int gsig_kill(gsig *g, int sig) {
    if (sig < 0 || sig >= NSIG) return EINVAL;
    if (sig == 0) return 0;
    lock_state l;
    state_lock(&l);
    if (sigismember(&g->mask, sig)) {
        // It stays g's alone: in the kernel another thread would take it, or
        // (every thread blocks it) it would wait on the OS thread it was
        // sent to, where g's sigwait on another hub, and sigpending, do not
        // see it.
        sigaddset(&g->pending, sig);
        wake_sigwait(g, sig);
        state_unlock(&l, 0);
        return 0;
    }
    state_unlock(&l, 0);
    note_target(sig, g);
    long r = GREEN_SYSCALL(SYS_tgkill, (long)getpid(), (long)hubs_tid_of(hubs_main()), (long)sig);
    return r < 0 ? errno : 0;
}

static int take_pending(gsig *g, const sigset_t *set, siginfo_t *info);

static int gsig_take_pending(gsig *g, const sigset_t *set, siginfo_t *info) {
    lock_state l;
    state_lock(&l);
    int sig = take_pending(g, set, info);
    state_unlock(&l, 0);
    return sig;
}

static int take_pending(gsig *g, const sigset_t *set, siginfo_t *info) {
    for (int sig = 1; sig < NSIG; sig++) {
        if (!sigismember(set, sig)) continue;
        sigset_t *from = sigismember(&g->pending, sig) ? &g->pending
                         : sigismember(&process_pending, sig) ? &process_pending : NULL; // the thread's first
        if (!from) continue;
        sigdelset(from, sig);
        if (info) {
            memset(info, 0, sizeof *info);
            info->si_signo = sig;
            if (from == &g->pending) { // pthread_kill from this process
                info->si_code = SI_TKILL;
                info->si_pid = getpid();
                info->si_uid = getuid();
            } else {
                info->si_code = SI_USER; // its sender's pid and uid are not kept
            }
        }
        return sig;
    }
    return 0;
}

// ---- a signal the program sends its own process ---------------------------------------
//
// Each hub loads a changed mask at its next turn: for a moment after a
// thread blocks a signal again, another hub's OS thread may still leave it
// unblocked. A signal the program sends itself right then (BIND's
// kill(getpid(), SIGTERM), after its threads blocked SIGTERM again) would go
// to that thread, and with SIG_DFL end the process, where natively every
// thread blocks it and a sigwait takes it. So before such a send, every hub
// loads the threads' mask of now: at once when idle, at its next turn when
// busy, waited for up to SETTLE_MAX_NS. (A signal from another process can
// still meet that moment.)

#define SETTLE_MAX_NS 100000000 // 100 ms: a busy hub's next turn is a slice (2-10 ms) away

/// Every hub has loaded the threads' mask of now, or SETTLE_MAX_NS passed.
/// Only for `sig` that every thread blocks, with no handler of the program's
/// (a handler's is caught by the library's, which routes it as the masks say).
static void settle_hubs(int sig) {
    // Not in a vfork child (its memory is the parent's), nor with one hub.
    if (!ready || hubs_count() < 2 || (pid_t)GREEN_SYSCALL(SYS_getpid) != owner_pid) return;
    if (sig <= 0 || sig > 64 || (BIT(sig) & UNBLOCKABLE) || preload_signal_program_handles(sig)) return;
    if (!(atomic_load_explicit(&applied_word, memory_order_acquire) & BIT(sig))) return; // some thread takes it
    green_sched *self = green_sched_current();
    int mine = hubs_index_of(self);
    // This OS thread: a hub's, outside a handler, loads the mask of now; in
    // a handler (whose mask sigreturn puts back) it only blocks `sig` too; a
    // native thread keeps its own mask, as natively.
    int whole = mine >= 0 && !green_tls_in_signal_handler;
    if (whole) gsig_reload_here();
    else if (mine >= 0) {
        sigset_t one;
        set_bits(&one, BIT(sig));
        GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_BLOCK, &one, NULL, KERNEL_SIGSET);
    }
    int gen = __atomic_load_n(&applied_generation, __ATOMIC_ACQUIRE);
    ask_others(gen);
    int64_t give_up = green_now_ns() + SETTLE_MAX_NS;
    for (;;) {
        int behind = 0;
        for (int i = 0, n = hubs_count(); i < n; i++)
            if (i != mine && hubs_sched(i) && gen_before(__atomic_load_n(&hub_loaded[i], __ATOMIC_RELAXED), gen)) behind = 1;
        if (!behind || green_now_ns() >= give_up) return;
        if (whole) gsig_reload_if_asked(); // another hub settling waits for this one meanwhile
        GREEN_SYSCALL(SYS_sched_yield);
    }
}

/// Does a kill(pid, ...) reach this process? (pid -1 does not, on Linux.)
static int reaches_self(pid_t pid) {
    return pid == 0 || pid == owner_pid || (pid < -1 && -pid == getpgrp());
}

GREEN_EXPORT int kill(pid_t pid, int sig) {
    if (sig != 0 && reaches_self(pid)) settle_hubs(sig);
    return (int)GREEN_SYSCALL(SYS_kill, (long)pid, (long)sig);
}

GREEN_EXPORT int killpg(pid_t pgrp, int sig) {
    if (pgrp < 0) { // as glibc
        errno = EINVAL;
        return -1;
    }
    return kill(-pgrp, sig);
}

GREEN_EXPORT int sigqueue(pid_t pid, int sig, const union sigval value) {
    // As glibc: the siginfo of a queued signal, sent with rt_sigqueueinfo.
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = sig;
    info.si_code = SI_QUEUE;
    info.si_pid = (pid_t)GREEN_SYSCALL(SYS_getpid);
    info.si_uid = getuid();
    info.si_value = value;
    if (sig != 0 && reaches_self(pid)) settle_hubs(sig);
    return (int)GREEN_SYSCALL(SYS_rt_sigqueueinfo, (long)pid, (long)sig, &info);
}

// ---- interposers ----------------------------------------------------------------------

GREEN_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    gsig *g = gsig_current();
    if (!g) {
        long r = GREEN_SYSCALL(SYS_rt_sigprocmask, (long)how, set, old, KERNEL_SIGSET);
        return r < 0 ? errno : 0;
    }
    sigset_t next = g->mask;
    if (set) {
        if (how == SIG_BLOCK) sigorset(&next, &g->mask, set);
        else if (how == SIG_UNBLOCK) {
            for (int sig = 1; sig < NSIG; sig++)
                if (sigismember(set, sig)) sigdelset(&next, sig);
        } else if (how == SIG_SETMASK) next = *set;
        else return EINVAL;
    }
    // The old mask as the kernel writes it: its 64 bits alone, after the
    // change; EFAULT (the change made) where the program cannot take them.
    sigset_t before = g->mask;
    if (set) set_mask(g, &next);
    if (old && shim_copy_out(old, &before, KERNEL_SIGSET) != 0) return EFAULT;
    return 0;
}

GREEN_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    int r = pthread_sigmask(how, set, old);
    if (r) {
        errno = r;
        return -1;
    }
    return 0;
}

GREEN_EXPORT int sigpending(sigset_t *set) {
    gsig *g = gsig_current();
    long r = GREEN_SYSCALL(SYS_rt_sigpending, set, KERNEL_SIGSET);
    if (r < 0 || !g) return r < 0 ? -1 : 0;
    lock_state l;
    state_lock(&l);
    sigorset(set, set, &g->pending);
    sigorset(set, set, &process_pending);
    state_unlock(&l, 0);
    return 0;
}

unsigned gsig_swap_mask(const sigset_t *mask, sigset_t *old, int entering) {
    gsig *g = gsig_current();
    if (!g) return 0;
    unsigned handled = g->handled;
    *old = g->mask;
    // From after the handlers its mask lets run at once (the caller sees
    // those by the count) to the end of the call, a handler that runs for
    // the thread ends the call (signals.c). What one noted for it after the
    // call's wait is no interruption of its next call.
    if (!entering) {
        g->suspended = 0;
        if (g->fiber) green_fiber_forget_interrupt(g->fiber);
    }
    set_mask(g, mask); // may run a handler at once
    if (entering) g->suspended = 1;
    return handled;
}

unsigned gsig_handlers_run(void) {
    gsig *g = gsig_current();
    return g ? g->handled : 0;
}

/// Wait with `mask` as the thread's mask until a handler has run for it.
static int suspend_with(gsig *g, const sigset_t *mask) {
    sigset_t before = g->mask;
    unsigned handled = g->handled;
    g->suspended = 1;
    set_mask(g, mask); // may run a handler at once
    while (g->handled == handled) green_hub_abi_get()->sleep_until(GREEN_NO_DEADLINE, 0);
    g->suspended = 0;
    set_mask(g, &before);
    errno = EINTR;
    return -1;
}

/// libc's sigsuspend and pause, for native threads: cancellation points, as
/// the raw system call is not.
static int libc_sigsuspend(const sigset_t *mask) {
    static int (*fn)(const sigset_t *);
    if (!fn) fn = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
    return fn(mask);
}

GREEN_EXPORT int sigsuspend(const sigset_t *mask) {
    gsig *g = gsig_current();
    if (!g) return libc_sigsuspend(mask);
    sigset_t m; // read as the kernel reads it: EFAULT, not a crash
    if (shim_copy_sigset(&m, mask) != 0) return -1;
    return suspend_with(g, &m);
}

GREEN_EXPORT int pause(void) {
    gsig *g = gsig_current();
    if (g) {
        sigset_t same = g->mask;
        return suspend_with(g, &same);
    }
    sigset_t now;
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, NULL, &now, KERNEL_SIGSET);
    return libc_sigsuspend(&now);
}

// ---- what the shim asks (exec, spawn, system, sigwait) -------------------------------------

static int child_sigmask(sigset_t *out) {
    gsig *g = gsig_current();
    if (!g) return 0;
    *out = g->mask;
    return 1;
}

static int take_thread_signal(const sigset_t *set, siginfo_t *info) {
    gsig *g = gsig_current();
    return g ? gsig_take_pending(g, set, info) : 0;
}

static int sigwait_waiting(const sigset_t *set) {
    gsig *g = gsig_current();
    if (!g) return 0;
    lock_state l;
    state_lock(&l);
    int pending = 0;
    if (set) {
        g->sigwait_set = *set;
        pending = ((bits_of(&g->pending) | bits_of(&process_pending)) & bits_of(set)) != 0;
    }
    g->in_sigwait = set != NULL;
    state_unlock(&l, 0);
    return pending;
}

static const shim_thread_hooks hooks = {child_sigmask, take_thread_signal, sigwait_waiting, preempt_hold};
