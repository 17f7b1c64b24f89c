// poll.c — poll, ppoll, select, pselect, epoll_wait and epoll_pwait park the
// fiber on every listed fd at once, then let the kernel compute the answer
// with a zero-timeout call, so revents, fd sets and counts are exactly the
// kernel's. Each call is a fair turn (green_fair_turn): a thread whose poll
// always finds something ready still lets the others run. A handler for the
// thread ends the wait with EINTR, SA_RESTART or not: the kernel never
// restarts these calls.
#include "shim.h"
#include <sys/syscall.h>
#include "sync/sync.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define POLL_READ_EVENTS (POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND | POLLRDHUP)
#define POLL_WRITE_EVENTS (POLLOUT | POLLWRNORM | POLLWRBAND)

static int64_t deadline_ms(int timeout_ms) {
    return timeout_ms < 0 ? GREEN_NO_DEADLINE : green_deadline_in((int64_t)timeout_ms * 1000000);
}

/// -1 with EINVAL for a malformed timespec; otherwise 0 and *deadline.
static int deadline_ts(const struct timespec *ts, int64_t *deadline) {
    if (!ts) { *deadline = GREEN_NO_DEADLINE; return 0; }
    if (!green_timespec_valid(ts)) { errno = EINVAL; return -1; }
    *deadline = green_deadline_in(green_timespec_ns(ts));
    return 0;
}

static int park_loop(struct pollfd *fds, nfds_t n, int64_t deadline, int (*probe)(struct pollfd *, nfds_t, void *),
                     void *ctx, int *wfds, int *wev, int probed);

// ---- the signal mask of ppoll, pselect and epoll_pwait ----------------------------
//
// Under `green run` a fiber thread has a mask of its own (the preload
// library's sigmask.c): the call's mask is the thread's for the call's
// length, so a signal it unblocks is handled then, and the call fails with
// EINTR (any handler ends these calls). In a linked program, whose fibers
// share their thread's mask, the mask is not applied on a fiber.

typedef struct call_mask {
    int active;     ///< a mask was given and the thread has one of its own
    unsigned handled; ///< the thread's handler count before the call
    sigset_t old;   ///< its mask before the call
} call_mask;

/// Load `mask` (NULL: none) for the call. -1 with EINTR when a pending
/// signal it unblocked was handled at once; call mask_end either way.
static int mask_begin(call_mask *m, const sigset_t *mask) {
    const shim_pthread_hooks *h = shim_pthreads;
    m->active = 0;
    if (!mask) return 0;
    // The kernel reads the mask before anything else: EFAULT, not a crash.
    sigset_t copy;
    if (shim_copy_sigset(&copy, mask) != 0) return -1;
    m->active = h && h->swap_mask;
    if (!m->active) return 0;
    m->handled = h->swap_mask(&copy, &m->old, 1);
    if (h->handlers_run() == m->handled) return 0;
    errno = EINTR;
    return -1;
}

/// The thread's mask from before the call, keeping the call's errno.
static void mask_end(const call_mask *m) {
    if (!m->active) return;
    int err = errno;
    sigset_t during;
    shim_pthreads->swap_mask(&m->old, &during, 0);
    errno = err;
}

typedef struct wait_arrays { int *fds, *events; } wait_arrays;

static void free_wait_arrays(void *p) {
    wait_arrays *a = p;
    free(a->fds);
    free(a->events);
}

/// Park until one of fds is ready or the deadline passes; returns what a
/// zero-timeout poll says then. `probe` makes that zero-timeout call.
static int park_on_pollfds_probed(struct pollfd *fds, nfds_t n, int64_t deadline,
                                  int (*probe)(struct pollfd *, nfds_t, void *), void *ctx);

static int park_on_pollfds(struct pollfd *fds, nfds_t n, int64_t deadline,
                           int (*probe)(struct pollfd *, nfds_t, void *), void *ctx) {
    n = (unsigned int)n; // the kernel's count
    // The kernel sees the program's array (and count) before the shim reads
    // it or allocates for it: EFAULT and EINVAL as natively, not a crash.
    int r = probe(fds, n, ctx);
    if (r != 0) return r;
    return park_on_pollfds_probed(fds, n, deadline, probe, ctx);
}

/// park_on_pollfds after a probe that found nothing.
static int park_on_pollfds_probed(struct pollfd *fds, nfds_t n, int64_t deadline,
                                  int (*probe)(struct pollfd *, nfds_t, void *), void *ctx) {
    if (n <= 32) {
        int lfds[32], lev[32];
        return park_loop(fds, n, deadline, probe, ctx, lfds, lev, 1);
    }
    wait_arrays a = {malloc(n * sizeof *a.fds), malloc(n * sizeof *a.events)};
    if (!a.fds || !a.events) { free_wait_arrays(&a); errno = ENOMEM; return -1; }
    int result;
    // The waits are cancellation points: a thread cancelled in one frees them too.
    pthread_cleanup_push(free_wait_arrays, &a);
    result = park_loop(fds, n, deadline, probe, ctx, a.fds, a.events, 1);
    pthread_cleanup_pop(1);
    return result;
}

/// After this many wakes in a row that the probe found nothing for, while
/// stand-ins were watched, the loop looks at a growing interval instead
/// (1 ms, doubling to 50 ms): the hub watches readability and writability
/// alone, so an fd that is readable while the program asks only for POLLPRI
/// (select's except set) or for nothing would wake it at once, for ever.
#define SPURIOUS_WAKES_MAX 2

static int park_loop(struct pollfd *fds, nfds_t n, int64_t deadline, int (*probe)(struct pollfd *, nfds_t, void *),
                     void *ctx, int *wfds, int *wev, int probed) {
    int result;
    int spurious = 0;      // wakes in a row with nothing for the program, while stand-ins were watched
    int stand_ins = 0;     // fds watched for readability in place of what they ask
    int64_t backoff = 1000000;
    for (;;) {
        int r = probed ? 0 : probe(fds, n, ctx);
        probed = 0;
        if (r != 0) { result = r; break; }
        if (deadline != GREEN_NO_DEADLINE && green_now_ns() >= deadline) { result = 0; break; }
        if (spurious >= SPURIOUS_WAKES_MAX) {
            int64_t now = green_now_ns();
            int64_t until = deadline != GREEN_NO_DEADLINE && deadline - now < backoff ? deadline : now + backoff;
            if (backoff < 50000000) backoff *= 2;
            int w = hub()->sleep_until(until, GREEN_PARK_NO_RESTART);
            if (w == GREEN_WAKE_NORMAL || w == GREEN_WAKE_DEADLINE) continue; // look again
            errno = shim_errno_for_wake(w);
            result = -1;
            break;
        }
        int k = 0;
        stand_ins = 0;
        for (nfds_t i = 0; i < n; i++) {
            if (fds[i].fd < 0) continue;
            int ev = 0;
            if (fds[i].events & POLL_READ_EVENTS) ev |= GREEN_READ;
            if (fds[i].events & POLL_WRITE_EVENTS) ev |= GREEN_WRITE;
            // Readability stands in for what the hub cannot watch alone:
            // priority data (POLLPRI, POLLRDBAND), or only errors and hang-ups.
            if (!(fds[i].events & (POLLIN | POLLRDNORM | POLLRDHUP | POLL_WRITE_EVENTS))) stand_ins++;
            wfds[k] = fds[i].fd;
            wev[k] = ev ? ev : GREEN_READ; // errors and hang-ups show up as readable
            k++;
        }
        int w = k ? hub()->wait_fds(wfds, wev, k, deadline) : hub()->sleep_until(deadline, GREEN_PARK_NO_RESTART);
        if (w == GREEN_WAKE_NORMAL || w == GREEN_WAKE_FD_CLOSED) { // re-probe
            r = probe(fds, n, ctx);
            if (r != 0) { result = r; break; }
            if (stand_ins) spurious++;
            probed = 1;
            continue;
        }
        if (w == GREEN_WAKE_DEADLINE) { result = probe(fds, n, ctx); break; }
        errno = shim_errno_for_wake(w);
        result = -1;
        break;
    }
    return result;
}

static int probe_poll(struct pollfd *fds, nfds_t n, void *ctx) {
    (void)ctx;
    return REAL(poll)(fds, n, 0);
}

GREEN_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
    if (!green_on_fiber()) return REAL(poll)(fds, n, timeout);
    green_fair_check();
    if (timeout == 0) return REAL(poll)(fds, n, timeout);
    return park_on_pollfds(fds, n, deadline_ms(timeout), probe_poll, NULL);
}

GREEN_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *sigmask) {
    if (!green_on_fiber()) return REAL(ppoll)(fds, n, ts, sigmask);
    green_fair_check();
    int64_t deadline;
    if (deadline_ts(ts, &deadline) != 0) return -1;
    call_mask m;
    int r = mask_begin(&m, sigmask);
    if (r == 0) {
        if (ts && ts->tv_sec == 0 && ts->tv_nsec == 0) r = REAL(poll)(fds, n, 0);
        else r = park_on_pollfds(fds, n, deadline, probe_poll, NULL);
    }
    mask_end(&m);
    return r;
}

extern void __chk_fail(void) __attribute__((noreturn));

GREEN_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen) {
    if (fdslen / sizeof *fds < n) __chk_fail();
    return poll(fds, n, timeout);
}

// ---- select ---------------------------------------------------------------------

// The answer is the kernel's: a zero-timeout select on the program's own
// sets (EBADF, EFAULT for a set it cannot write, the counts). The shim reads
// the sets first through a checked copy (EFAULT where the kernel would
// say it), parks on the fds they name, and puts them back before each later
// look, since a look that finds nothing has cleared them.

typedef struct select_call {
    int nfds;           ///< the program's, for the kernel's looks
    int watched;        ///< the fds the shim parks on: below nfds and FD_SETSIZE
    fd_set *sets[3];    ///< the program's read, write and except sets
    fd_set copies[3];   ///< what they held on entry
    size_t bytes;       ///< what the kernel reads of each
    int looked;         ///< the sets were cleared by a look
} select_call;

static int probe_select(struct pollfd *p, nfds_t n, void *ctx) {
    (void)p;
    (void)n;
    select_call *c = ctx;
    for (int i = 0; i < 3 && c->looked; i++)
        if (c->sets[i]) memcpy(c->sets[i], &c->copies[i], c->bytes); // the kernel has just written them
    c->looked = 1;
    return REAL(select)(c->nfds, c->sets[0], c->sets[1], c->sets[2], &(struct timeval){0, 0});
}

static int select_with(struct pollfd *p, select_call *c, int64_t deadline);

static int select_via_poll(int nfds, fd_set *r, fd_set *w, fd_set *x, int64_t deadline) {
    if (nfds < 0) { errno = EINVAL; return -1; }
    // A count past FD_SETSIZE (select(getdtablesize(), …) under a raised fd
    // limit) is the kernel's to cut to its fd table; the shim watches the
    // fds an fd_set can name, and each look is the kernel's on the whole count.
    int watched = nfds < FD_SETSIZE ? nfds : FD_SETSIZE;
    select_call c = {.nfds = nfds, .watched = watched, .sets = {r, w, x}, .bytes = (size_t)(watched + 63) / 64 * 8};
    struct iovec here[3], there[3];
    int k = 0;
    for (int i = 0; i < 3; i++) {
        if (!c.sets[i]) continue;
        here[k] = (struct iovec){&c.copies[i], c.bytes};
        there[k++] = (struct iovec){c.sets[i], c.bytes};
    }
    if (shim_copy_in_v(here, there, k) != 0) return -1;
    if (watched <= 64) {
        struct pollfd local[64];
        return select_with(local, &c, deadline);
    }
    struct pollfd *p = malloc((size_t)watched * sizeof *p);
    if (!p) { errno = ENOMEM; return -1; }
    int result;
    pthread_cleanup_push(free, p); // a cancellation point: a thread cancelled in the wait frees it too
    result = select_with(p, &c, deadline);
    pthread_cleanup_pop(1);
    return result;
}

/// select's answer, parking on the fds of the copied sets; `p` has room for `watched` pollfds.
static int select_with(struct pollfd *p, select_call *c, int64_t deadline) {
    int r = probe_select(NULL, 0, c);
    if (r != 0) return r;
    nfds_t n = 0;
    for (int fd = 0; fd < c->watched; fd++) {
        short ev = 0;
        if (c->sets[0] && FD_ISSET(fd, &c->copies[0])) ev |= POLLIN;
        if (c->sets[1] && FD_ISSET(fd, &c->copies[1])) ev |= POLLOUT;
        if (c->sets[2] && FD_ISSET(fd, &c->copies[2])) ev |= POLLPRI;
        if (ev) p[n++] = (struct pollfd){.fd = fd, .events = ev, .revents = 0};
    }
    r = park_on_pollfds_probed(p, n, deadline, probe_select, c);
    if (r < 0) // EINTR…: the kernel leaves the sets as they were
        for (int i = 0; i < 3; i++)
            if (c->sets[i]) memcpy(c->sets[i], &c->copies[i], c->bytes);
    return r;
}

GREEN_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv) {
    if (!green_on_fiber()) return REAL(select)(nfds, r, w, x, tv);
    green_fair_check();
    if (tv && tv->tv_sec == 0 && tv->tv_usec == 0) return REAL(select)(nfds, r, w, x, tv);
    int64_t deadline = GREEN_NO_DEADLINE;
    if (tv) {
        if (tv->tv_sec < 0 || tv->tv_usec < 0) { errno = EINVAL; return -1; }
        // A million microseconds or more carry into the seconds, as glibc's
        // select (and the kernel's) take them.
        struct timeval t = {tv->tv_sec + tv->tv_usec / 1000000, tv->tv_usec % 1000000};
        if (t.tv_sec < tv->tv_sec) t.tv_sec = tv->tv_sec; // (saturates: the timeout stays huge)
        deadline = green_deadline_in(green_timeval_ns(&t));
    }
    int res = select_via_poll(nfds, r, w, x, deadline);
    if (tv && deadline != GREEN_NO_DEADLINE) { // Linux reports the time not slept
        struct timespec left = green_ns_timespec(green_ns_until(deadline));
        tv->tv_sec = left.tv_sec;
        tv->tv_usec = left.tv_nsec / 1000;
    }
    return res;
}

GREEN_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts, const sigset_t *sigmask) {
    if (!green_on_fiber()) return REAL(pselect)(nfds, r, w, x, ts, sigmask);
    green_fair_check();
    int64_t deadline;
    if (deadline_ts(ts, &deadline) != 0) return -1;
    call_mask m;
    int res = mask_begin(&m, sigmask);
    if (res == 0) {
        if (ts && ts->tv_sec == 0 && ts->tv_nsec == 0) res = REAL(select)(nfds, r, w, x, &(struct timeval){0, 0});
        else res = select_via_poll(nfds, r, w, x, deadline);
    }
    mask_end(&m);
    return res;
}

// ---- epoll ----------------------------------------------------------------------

// A program's own event loop (libuv, redis's ae) calls epoll_wait on every
// turn. The hub watches the program's epoll fd, which is readable while its
// set has events; what a turn costs is the number of system calls:
//   probe first (epoll_wait, timeout 0): 1 when events are already pending,
//     3 when not (the probe, the hub's epoll_wait, the probe after the wake);
//   park first: always 2 (the hub's epoll_wait, the probe after the wake).
// A busy loop finds events pending and probes first; once a probe finds
// nothing the thread parks first, and samples with a probe every
// EPOLL_SAMPLE-th turn to notice the loop getting busy again.
#define EPOLL_SAMPLE 8

/// This thread's epoll turns: bit 0 set while its probes find events
/// pending, the rest counts turns (for the sampling).
static __thread unsigned epoll_turns;
/// The epoll sets this thread's probes accepted, each with its word
/// (green_fd_generation) then: parking first on any other fd could hand
/// libev a number that is not open, or not an epoll fd; the probe says
/// EBADF / EINVAL at once, as the kernel would. And whether the hub can
/// watch the set: one nested four deep cannot be nested once more (epoll
/// says ELOOP, and libev would abort); such a set is probed at a growing
/// interval instead (1 ms, doubling to 50 ms). A few sets, so that a thread
/// taking turns between loops does not check each again every turn.
#define EPOLL_KNOWN 4
typedef struct {
    int fd;         ///< -1: empty
    bool watchable; ///< the hub can add it to its own set
    uint64_t word;  ///< the number's word when checked
} epoll_known_set;
static __thread epoll_known_set epoll_known[EPOLL_KNOWN] = {{-1}, {-1}, {-1}, {-1}};
static __thread unsigned epoll_known_next; ///< the entry replaced next

/// The entry for epfd if it was checked under its current word.
static epoll_known_set *known_set(int epfd, uint64_t word) {
    for (int i = 0; i < EPOLL_KNOWN; i++)
        if (epoll_known[i].fd == epfd && epoll_known[i].word == word) return &epoll_known[i];
    return NULL;
}

static void remember_set(int epfd, uint64_t word, bool watchable) {
    epoll_known_set *e = NULL;
    for (int i = 0; i < EPOLL_KNOWN && !e; i++)
        if (epoll_known[i].fd == epfd) e = &epoll_known[i];
    if (!e) e = &epoll_known[epoll_known_next++ % EPOLL_KNOWN];
    *e = (epoll_known_set){.fd = epfd, .watchable = watchable, .word = word};
}

/// Whether a hub's epoll set can take epfd: tried on a fresh set of the
/// shim's own, which nests it as deep as a hub's would. (The trial set
/// holds a number only for the two calls: the program sees no fd more
/// afterwards. errno is left as it was.)
static bool hub_can_watch(int epfd) {
    int e = errno;
    bool ok = true; // cannot tell (EMFILE…): let the hub watch it, as before
    int trial = (int)GREEN_SYSCALL(SYS_epoll_create1, EPOLL_CLOEXEC);
    if (trial >= 0) {
        struct epoll_event ev = {.events = EPOLLIN};
        ok = GREEN_SYSCALL(SYS_epoll_ctl, trial, EPOLL_CTL_ADD, epfd, &ev) == 0;
        shim_close_own(trial);
    }
    errno = e;
    return ok;
}

/// epoll_park for a set the hub cannot watch.
static int epoll_poll_unwatchable(int epfd, struct epoll_event *ev, int max, int64_t deadline) {
    int64_t backoff = 1000000;
    for (;;) {
        int r = REAL(epoll_wait)(epfd, ev, max, 0);
        if (r != 0) return r;
        int64_t now = green_now_ns();
        if (deadline != GREEN_NO_DEADLINE && now >= deadline) return 0;
        int64_t until = deadline != GREEN_NO_DEADLINE && deadline - now < backoff ? deadline : now + backoff;
        int w = hub()->sleep_until(until, GREEN_PARK_NO_RESTART);
        if (w != GREEN_WAKE_NORMAL && w != GREEN_WAKE_DEADLINE) {
            errno = shim_errno_for_wake(w);
            return -1;
        }
        if (backoff < 50000000) backoff *= 2;
    }
}

/// Park until the program's epoll set has events or the deadline passes.
static int epoll_park(int epfd, struct epoll_event *ev, int max, int64_t deadline) {
    unsigned turns = epoll_turns += 2;
    uint64_t word;
    bool trusted = green_fd_generation(epfd, &word);
    epoll_known_set *known = trusted && max > 0 ? known_set(epfd, word) : NULL;
    bool watchable = known && known->watchable;
    if (!known || (turns & 1) || (turns >> 1) % EPOLL_SAMPLE == 0) {
        int r = REAL(epoll_wait)(epfd, ev, max, 0);
        if (r < 0) return r; // EBADF, EINVAL, EFAULT, EINTR: as the kernel says
        if (r > 0) {
            epoll_turns |= 1;
            return r;
        }
        epoll_turns &= ~1u;
    }
    if (!known) {
        // An epoll set, as the probe just said: checked once, and
        // remembered while its number's word holds (a number being closed
        // is checked at every park).
        watchable = hub_can_watch(epfd);
        if (trusted && max > 0) remember_set(epfd, word, watchable);
    }
    if (!watchable) return epoll_poll_unwatchable(epfd, ev, max, deadline);
    for (;;) { // a deadline already past ends the park at once
        int w = hub()->wait_fds(&epfd, &(int){GREEN_READ}, 1, deadline); // ended by any handler, as poll
        if (w != GREEN_WAKE_NORMAL && w != GREEN_WAKE_DEADLINE) {
            errno = shim_errno_for_wake(w);
            return -1;
        }
        int r = REAL(epoll_wait)(epfd, ev, max, 0); // what arrived by the deadline counts too
        if (r != 0 || w == GREEN_WAKE_DEADLINE) return r;
    }
}

GREEN_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
    if (!green_on_fiber()) return REAL(epoll_wait)(epfd, ev, max, timeout);
    green_fair_check();
    if (timeout == 0) return REAL(epoll_wait)(epfd, ev, max, timeout);
    return epoll_park(epfd, ev, max, deadline_ms(timeout));
}

/// libc's epoll_pwait2 (glibc 2.35 and later), else the system call.
static int libc_epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *timeout,
                             const sigset_t *mask) {
    if (REAL(epoll_pwait2)) return REAL(epoll_pwait2)(epfd, ev, max, timeout, mask);
    return (int)GREEN_SYSCALL(SYS_epoll_pwait2, (long)epfd, (long)ev, (long)max, (long)timeout, (long)mask,
                              (long)SHIM_KERNEL_SIGSET);
}

/// epoll_pwait with a timespec timeout (NULL: none), as the kernel reads it
/// first: EFAULT, EINVAL.
GREEN_EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *timeout,
                              const sigset_t *mask) {
    if (!green_on_fiber()) return libc_epoll_pwait2(epfd, ev, max, timeout, mask);
    green_fair_check();
    struct timespec t;
    int64_t deadline;
    if (timeout && shim_copy_in(&t, timeout, sizeof t) != 0) return -1;
    if (deadline_ts(timeout ? &t : NULL, &deadline) != 0) return -1;
    call_mask m;
    int r = mask_begin(&m, mask);
    if (r == 0) r = timeout && t.tv_sec == 0 && t.tv_nsec == 0 ? REAL(epoll_wait)(epfd, ev, max, 0)
                                                                : epoll_park(epfd, ev, max, deadline);
    mask_end(&m);
    return r;
}

GREEN_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask) {
    if (!green_on_fiber()) return REAL(epoll_pwait)(epfd, ev, max, timeout, mask);
    green_fair_check();
    call_mask m;
    int r = mask_begin(&m, mask);
    if (r == 0) r = timeout == 0 ? REAL(epoll_wait)(epfd, ev, max, 0) : epoll_park(epfd, ev, max, deadline_ms(timeout));
    mask_end(&m);
    return r;
}
