// fd_waits.c — parking a fiber until one fd (or any of several) is ready,
// with libev io watchers indexed by fd so that closing an fd wakes its
// waiters before the number is reused. The kernel's registration outlives
// the watchers: a wait on a number whose generation (fd_generations.c) has
// not moved costs no epoll_ctl.
//
// A lone waiter on a number uses the hub's *kept* watcher for it, which
// stays started when the wait ends, until the hub's next poll: a server's
// next wait on the same connection (woken, read, reply, wait again, all in
// one turn of the hub) then only attaches to it, where starting and
// stopping a libev watcher per wait cost about 180 of an echo's 1,319
// user-space instructions (the check before the poll that a re-attached
// wait still needs takes back half of that). Before it polls, the hub stops every kept watcher nobody
// attached to again, so that at a poll libev holds only watchers that
// fibers wait on, as without them: no idle watcher fires (epoll is
// level-triggered), counts as something that could wake the root, or keeps
// a number registered that another thread closed meanwhile (libev asserts
// on EBADF). Any other waiter (a second one on the number, each fd of a
// poll) has a watcher on its own stack, started and stopped with its wait.
//
// A caller that drained a socket and calls again once woken (the shim's
// reads and writes of a connection: GREEN_WAIT_DRAINED, _SHORT_READ) waits
// on the hub's edge-triggered set instead (edge_wait below, edge_poller.c):
// no watcher at all, the fiber named in its number's slot.
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>

// ---- fd waits ----------------------------------------------------------------

/// A fiber parked on an fd, indexed by fd so that green_fd_closing() can
/// find and stop it. On the parked fiber's stack, or the hub's kept watcher.
struct green_fd_wait {
    ev_io io;
    green_fiber *fiber;  ///< NULL: a kept watcher nobody is attached to
    bool kept;           ///< the hub's kept watcher for its number (heap memory, reused)
    bool idle_listed;    ///< kept: on the hub's list of those to stop before its poll
    green_fd_wait *idle_next; ///< that list's link
    green_fd_wait *next, *prev;
    int revents;
    bool closed;         ///< set by green_fd_closing: the fd must not be touched again
    bool began_in_close; ///< a close of the number was under way when the wait began
    uint64_t word;       ///< the number's word (fd_generations.c) when the wait began (wake_stale)
};

/// A kept watcher's wait ended with it still started: it stays so until
/// the hub's next poll (fd_waits_before_poll stops it unless a wait on
/// its number attached again).
static void keep_until_poll(green_sched *s, green_fd_wait *k) {
    if (k->idle_listed) return;
    k->idle_listed = true;
    k->idle_next = s->fd_waits.idle;
    s->fd_waits.idle = k;
}

static void fd_wait_cb(struct ev_loop *loop, ev_io *w, int revents) {
    green_fd_wait *fw = (green_fd_wait *)w;
    if (revents & EV_ERROR) { // libev could not register the fd (ENOSPC, ENOMEM): try again next wait
        green_sched *s = green_tls_sched;
        if ((size_t)w->fd < s->fd_waits.cap) s->fd_waits.slots[w->fd].registered = 0;
    }
    if (!fw->fiber) { // a kept watcher nobody waits on (none is started at a poll: defensive)
        ev_io_stop(loop, w);
        return;
    }
    if (fw->fiber->state == GREEN_FIBER_DONE) { // abandoned in a fork child: never again
        ev_io_stop(loop, w);
        return;
    }
    fw->revents |= revents;
    green_wake(fw->fiber, GREEN_WAKE_NORMAL);
}

/// Grow the per-number tables to hold fd (out of line: they grow rarely).
__attribute__((noinline)) static int fd_index_grow(green_sched *s, int fd) {
    size_t old = s->fd_waits.cap, cap = old ? old : 256;
    while (cap <= (size_t)fd) cap *= 2;
    _Static_assert(sizeof(green_fd_slot) == 64, "an fd's slot is one cache line");
    green_fd_slot *n = aligned_alloc(64, cap * sizeof *n); // rare: the thread cache's bypass does not matter
    if (!n) return -1;
    if (old) memcpy(n, s->fd_waits.slots, old * sizeof *n);
    memset(n + old, 0, (cap - old) * sizeof *n);
    free(s->fd_waits.slots);
    s->fd_waits.slots = n;
    s->fd_waits.cap = cap;
    return 0;
}

static inline int fd_index_reserve(green_sched *s, int fd) {
    return (size_t)fd < s->fd_waits.cap ? 0 : fd_index_grow(s, fd);
}

/// The hub's kept watcher for fd if nobody else waits on the number (made
/// on first use), else NULL: the caller then uses one on its own stack.
static green_fd_wait *kept_watcher(green_sched *s, int fd) {
    if (fd < 0 || fd_index_reserve(s, fd) != 0 || s->fd_waits.slots[fd].waiters) return NULL;
    green_fd_wait *k = s->fd_waits.slots[fd].kept;
    if (!k) {
        // 64-byte aligned: two cache lines, where calloc's 16 could make it three.
        size_t size = (sizeof *k + 63) & ~(size_t)63;
        k = aligned_alloc(64, size);
        if (!k) return NULL;
        memset(k, 0, size);
        k->kept = true;
        s->fd_waits.slots[fd].kept = k;
    }
    return k->fiber ? NULL : k; // a woken waiter that has not left yet still owns it
}

/// Stop fd's kept watcher if nobody is attached (fd is closing: libev must
/// forget the number before it names another file).
static void stop_idle_kept(green_sched *s, int fd) {
    green_fd_wait *k = (size_t)fd < s->fd_waits.cap ? s->fd_waits.slots[fd].kept : NULL;
    if (k && !k->fiber && ev_is_active(&k->io)) ev_io_stop(s->loop, &k->io);
}

void fd_waits_destroy(green_sched *s) {
    edge_poller_destroy(s);
    for (size_t fd = 0; fd < s->fd_waits.cap; fd++) free(s->fd_waits.slots[fd].kept);
    free(s->fd_waits.slots);
    free(s->fd_waits.started);
}

/// The hub has no waiter on fd any more: closes on other hubs need not tell
/// it. Called where a close is handled, not at the end of every wait: the
/// bit stays up between waits on the same number (no atomic write per wait),
/// at the cost of one needless tell when the number is closed later.
static void no_waiters_left(green_sched *s, int fd) {
    if (s->share.bit) fd_hubs_remove(fd, s->share.bit);
}

static void fd_index_remove(green_sched *s, int fd, green_fd_wait *fw) {
    if (fw->prev) fw->prev->next = fw->next;
    else if ((size_t)fd < s->fd_waits.cap && s->fd_waits.slots[fd].waiters == fw) s->fd_waits.slots[fd].waiters = fw->next;
    if (fw->next) fw->next->prev = fw->prev;
    fw->next = fw->prev = NULL;
}

/// Room for one more entry on the started list (out of line: it grows rarely).
__attribute__((noinline, cold)) static bool started_grow(green_fd_wait_table *t) {
    size_t cap = t->started_cap ? t->started_cap * 2 : 64;
    struct green_fd_started *n = realloc(t->started, cap * sizeof *n);
    if (!n) return false;
    t->started = n;
    t->started_cap = cap;
    return true;
}

/// Remember that fd's watcher started under `word` (see fd_waits_before_poll).
/// Without room the fd is not checked: as before this check existed.
__attribute__((always_inline)) static inline void note_started(green_sched *s, int fd, uint64_t word) {
    green_fd_wait_table *t = &s->fd_waits;
    uint32_t slot = t->slots[fd].started_slot;
    if (slot && slot <= t->started_count && t->started[slot - 1].fd == fd) {
        // One entry per number, with the newest word: the watchers that
        // started before it on this hub were woken by the close that moved
        // the word here, or share the registration libev makes now.
        t->started[slot - 1].word = word;
        return;
    }
    if (__builtin_expect(t->started_count == t->started_cap, 0) && !started_grow(t)) return;
    t->started[t->started_count++] = (struct green_fd_started){fd, word};
    t->slots[fd].started_slot = (uint32_t)t->started_count;
}

/// fw waits for the current fiber now: indexed under fd, begun under `word`.
static void attach(green_sched *s, green_fd_wait *fw, int fd, uint64_t word, bool known) {
    fw->word = word;
    fw->began_in_close = !known;
    fw->fiber = s->run.current;
    fw->revents = 0;
    fw->closed = false;
    fw->prev = NULL;
    fw->next = s->fd_waits.slots[fd].waiters;
    if (fw->next) fw->next->prev = fw;
    s->fd_waits.slots[fd].waiters = fw;
}

/// Start watching fd for the current fiber: fw is indexed under fd and its
/// libev watcher started (a kept one that is still started on the same
/// file only attached). -1 (nothing started) for a bad or unindexable fd.
__attribute__((always_inline)) static inline int watch(green_sched *s, green_fd_wait *fw, int fd, int events) {
    if (fd < 0 || fd_index_reserve(s, fd) != 0) return -1;
    events &= EV_READ | EV_WRITE;
    // The hub's bit goes up before the word is read (fd_generations.c): a
    // close on another hub that this wait could miss then always tells it.
    if (s->share.bit) fd_hubs_add(fd, s->share.bit);
    uint64_t gen;
    bool known = fd_generation_get(fd, &gen);
    if (fw->kept && ev_is_active(&fw->io)) {
        if (known && fw->word == gen && (fw->io.events & (EV_READ | EV_WRITE)) == events) {
            // Still started on the same file: attach, nothing for libev to do.
            // Checked before the poll as a started wait is: a close by a
            // thread that tells no hub must still end it (EBADF).
            note_started(s, fd, gen);
            attach(s, fw, fd, gen, known);
            return 0;
        }
        ev_io_stop(s->loop, &fw->io);
    }
    if (known && s->fd_waits.slots[fd].registered == gen + 1) {
        // The file this hub registered under fd last time: libev keeps the
        // kernel's registration (no epoll_ctl when the mask is unchanged).
        ev_init(&fw->io, fd_wait_cb);
        fw->io.fd = fd;
        fw->io.events = events;
    } else {
        ev_io_init(&fw->io, fd_wait_cb, fd, events); // EV__IOFDSET: register anew
        s->fd_waits.slots[fd].registered = known ? gen + 1 : 0;
    }
    note_started(s, fd, gen);
    attach(s, fw, fd, gen, known);
    ev_io_start(s->loop, &fw->io);
    return 0;
}

/// Stop what watch() started, unless green_fd_closing already did. libev
/// may have stopped the watcher itself (it could not register the fd:
/// EV_ERROR), so the index entry is removed whether it is active or not.
static void unwatch(green_sched *s, green_fd_wait *fw) {
    if (!fw->closed) { // else green_fd_closing stopped it and took it out of the index
        if (ev_is_active(&fw->io)) {
            if (fw->kept) keep_until_poll(s, fw); // started still, for a wait on the number before the poll
            else ev_io_stop(s->loop, &fw->io);
        }
        fd_index_remove(s, fw->io.fd, fw);
    }
    fw->fiber = NULL; // a kept watcher is free for the next lone waiter
}

/// End fd's waits on the edge set, taking them out of the slot: each then
/// says EBADF if its number's file closed since it began, else it returns
/// as woken, and its caller calls again (edge_wait).
static void edge_waits_end(green_sched *s, int fd, int reason) {
    green_fd_slot *slot = &s->fd_waits.slots[fd];
    green_fiber *r = slot->edge_reader, *w = slot->edge_writer;
    slot->edge_reader = slot->edge_writer = NULL;
    if (r) green_wake(r, reason);
    if (w) green_wake(w, reason);
}

/// Stop this hub's watchers on fd and wake their fibers: the fd is closing.
static void wake_closed(green_sched *s, int fd) {
    green_fd_wait *fw = s->fd_waits.slots[fd].waiters;
    stop_idle_kept(s, fd);
    no_waiters_left(s, fd);
    edge_waits_end(s, fd, GREEN_WAKE_FD_CLOSED);
    if (!fw) return;
    s->fd_waits.slots[fd].waiters = NULL;
    while (fw) {
        green_fd_wait *next = fw->next;
        ev_io_stop(s->loop, &fw->io);
        fw->next = fw->prev = NULL;
        fw->closed = true;
        green_wake(fw->fiber, GREEN_WAKE_FD_CLOSED);
        fw = next;
    }
}

/// What the kernel says of fd now, for `events`: -1 the number is not open,
/// 1 ready, 0 not ready (or cannot tell).
static int kernel_readiness(int fd, int events) {
    struct pollfd p = {.fd = fd, .events = (short)((events & EV_READ ? POLLIN : 0) | (events & EV_WRITE ? POLLOUT : 0))};
    struct timespec zero = {0, 0};
    long r;
    do r = GREEN_SYSCALL(SYS_ppoll, &p, 1, &zero, NULL, 0);
    while (r < 0 && errno == EINTR);
    if (r != 1) return 0;
    return p.revents & POLLNVAL ? -1 : 1;
}

static void end_wait(green_sched *s, int fd, green_fd_wait *fw, bool closed) {
    fd_index_remove(s, fd, fw);
    ev_io_stop(s->loop, &fw->io);
    if (closed) {
        fw->closed = true;
        green_wake(fw->fiber, GREEN_WAKE_FD_CLOSED);
    } else {
        fw->revents |= fw->io.events & (EV_READ | EV_WRITE);
        green_wake(fw->fiber, GREEN_WAKE_NORMAL);
    }
}

/// fd was closed on another hub. This hub's waits that began on the file
/// that closed end with EBADF; a wait on the number's new file stays. A wait
/// that began while a close was under way (the kernel frees the number
/// before close returns: another thread may have had a new file under it
/// at once), or one only a range close could have ended, may be on either:
/// the kernel says whether the number is open — not: EBADF; ready: it
/// ends as ready; else it goes on waiting, registered anew (on whatever
/// file the number names now). Its call never sees a readiness that is not
/// there (a pipe's read, a connect, may not ask again).
static void wake_stale(green_sched *s, int fd) {
    if ((size_t)fd >= s->fd_waits.cap) return;
    uint64_t now;
    bool trusted = fd_generation_get(fd, &now);
    uint64_t own = fd_generation_own_part(now);
    green_fd_slot *slot = &s->fd_waits.slots[fd];
    if ((slot->edge_reader || slot->edge_writer) && slot->edge_word != now + 1) {
        // Their file closed (EBADF), or a range close may have closed it:
        // they call again and learn from the kernel, as their callers do
        // after any wake (registered anew if the number names a new file).
        // (edge_word 0: a fork child's hub let go of the set; still open.)
        bool closed = slot->edge_word && fd_generation_own_part(slot->edge_word - 1) != own;
        edge_waits_end(s, fd, closed ? GREEN_WAKE_FD_CLOSED : GREEN_WAKE_NORMAL);
    }
    for (green_fd_wait *fw = s->fd_waits.slots[fd].waiters, *next; fw; fw = next) {
        next = fw->next;
        if (fw->word == now || fw->closed) continue;
        if (!fw->began_in_close && fd_generation_own_part(fw->word) != own) {
            end_wait(s, fd, fw, true); // its file closed since it began
            continue;
        }
        int events = fw->io.events & (EV_READ | EV_WRITE);
        int k = kernel_readiness(fd, events);
        if (k != 0) {
            end_wait(s, fd, fw, k < 0);
            continue;
        }
        if (fw->closed) continue; // a close (in a signal handler during the ppoll) ended it
        ev_io_stop(s->loop, &fw->io);
        ev_io_set(&fw->io, fd, events); // EV__IOFDSET: libev registers the number anew
        ev_io_start(s->loop, &fw->io);
        s->fd_waits.slots[fd].registered = trusted ? now + 1 : 0;
        note_started(s, fd, now); // checked before the next poll, as a new wait is
        fw->word = now;
        fw->began_in_close = !trusted;
    }
    if (!fd_slot_has_waits(&s->fd_waits.slots[fd])) no_waiters_left(s, fd);
}

// ---- writers to try again (green_fd_retry_writers) ----------------------------
//
// A note names the socket by its number and the generation the number had
// when its writing side shut down: a wait begun on a file that took the
// number since (a close, a reuse) is not that socket's and goes on. A note
// is one word, so that a signal handler can post it: the number + 1 in the
// low 23 bits (fds below 4 M, as the generations), and above them the
// number's word without its closes-in-progress byte, truncated to 41 bits
// (its own generation and the low bits of the range generation).
#define NOTE_FD_BITS 23
#define NOTE_GENERATION_MASK ((UINT64_C(1) << (64 - NOTE_FD_BITS)) - 1)

static uint64_t note_generation(uint64_t word) { return (word >> 8) & NOTE_GENERATION_MASK; }

static uint64_t retry_note(int fd, uint64_t word) {
    return note_generation(word) << NOTE_FD_BITS | (uint64_t)(fd + 1);
}

/// This hub's waits for writing on fd that began on the file whose word
/// was `word` end as ready: each call tries again, and waits anew if the
/// kernel still says EAGAIN. With `any_unix_file`, instead every write wait
/// begun on the file fd names now, if that is an AF_UNIX socket (after an
/// overflow of the notes).
static void retry_writers_here(green_sched *s, int fd, uint64_t word, bool any_unix_file) {
    if ((size_t)fd >= s->fd_waits.cap || !fd_slot_has_waits(&s->fd_waits.slots[fd])) return;
    if (any_unix_file) {
        int domain = 0;
        socklen_t len = sizeof domain;
        if (GREEN_SYSCALL(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX) return;
        fd_generation_get(fd, &word);
    }
    for (green_fd_wait *fw = s->fd_waits.slots[fd].waiters, *next; fw; fw = next) {
        next = fw->next;
        if (fw->closed || fw->began_in_close || !(fw->io.events & EV_WRITE)) continue;
        if (note_generation(fw->word) != note_generation(word)) continue; // another file's
        end_wait(s, fd, fw, false);
    }
    green_fd_slot *slot = &s->fd_waits.slots[fd];
    if (slot->edge_writer && note_generation(slot->edge_word - 1) == note_generation(word)) {
        slot->edge_ready |= EDGE_WRITE; // taken by the wait's return: its call tries again
        green_wake(slot->edge_writer, GREEN_WAKE_NORMAL);
    }
    if (!fd_slot_has_waits(slot)) no_waiters_left(s, fd);
}

static void post_note(green_sched *s, void *note) { green_sched_post_retry_writers(s, *(uint64_t *)note); }

void green_fd_retry_writers(int fd) {
    if (fd < 0 || fd >= (1 << (NOTE_FD_BITS - 1))) return;
    uint64_t word;
    fd_generation_get(fd, &word);
    uint64_t note = retry_note(fd, word);
    green_sched *s = green_tls_sched;
    if (green_tls_in_signal_handler) {
        // No lock here: this hub (once the handler returned) and the hubs
        // of its sharing group that wait on the number.
        if (s) green_sched_post_retry_writers(s, note);
        uint64_t hubs = fd_hubs_waiting(fd);
        while (hubs) {
            int bit = __builtin_ctzll(hubs);
            hubs &= hubs - 1;
            green_sched *h = green_share_member(bit);
            if (h && h != s) green_sched_post_retry_writers(h, note);
        }
        return;
    }
    if (s) retry_writers_here(s, fd, word, false);
    green_monitor_each_hub(s, post_note, &note); // every other hub: shutdown is rare
}

static void take_retry_notes(green_sched *s) {
    for (int i = 0; i < GREEN_RETRY_SLOTS; i++) {
        if (!atomic_load_explicit(&s->inbox.retry_notes[i], memory_order_relaxed)) continue;
        uint64_t note = atomic_exchange(&s->inbox.retry_notes[i], 0);
        if (!note) continue;
        int fd = (int)(note & ((UINT64_C(1) << NOTE_FD_BITS) - 1)) - 1;
        retry_writers_here(s, fd, (note >> NOTE_FD_BITS) << 8, false);
    }
    if (atomic_load_explicit(&s->inbox.retry_overflow, memory_order_relaxed) &&
        atomic_exchange(&s->inbox.retry_overflow, false)) {
        for (size_t fd = 0; fd < s->fd_waits.cap; fd++) retry_writers_here(s, (int)fd, 0, true);
    }
}

void fd_waits_after_fork(green_sched *s) {
    for (int i = 0; i < GREEN_CLOSED_FD_SLOTS; i++) atomic_store(&s->inbox.closed_fds[i], 0);
    atomic_store(&s->inbox.closed_overflow, false);
    for (int i = 0; i < GREEN_RETRY_SLOTS; i++) atomic_store(&s->inbox.retry_notes[i], 0);
    atomic_store(&s->inbox.retry_overflow, false);
    atomic_store(&s->inbox.closed_any, false);
    s->fd_waits.edges.forked = true; // the hub lets go of the parent's set before its next poll
    if (!s->share.bit) return;
    for (size_t fd = 0; fd < s->fd_waits.cap; fd++)
        if (fd_slot_has_waits(&s->fd_waits.slots[fd])) fd_hubs_add((int)fd, s->share.bit);
}

void fd_waits_take_closed(green_sched *s) {
    if (!atomic_load_explicit(&s->inbox.closed_any, memory_order_relaxed) ||
        !atomic_exchange(&s->inbox.closed_any, false))
        return;
    for (int i = 0; i < GREEN_CLOSED_FD_SLOTS; i++) {
        if (!atomic_load_explicit(&s->inbox.closed_fds[i], memory_order_relaxed)) continue;
        int v = atomic_exchange(&s->inbox.closed_fds[i], 0);
        if (v) wake_stale(s, v - 1);
    }
    take_retry_notes(s);
    if (atomic_load_explicit(&s->inbox.closed_overflow, memory_order_relaxed) &&
        atomic_exchange(&s->inbox.closed_overflow, false)) {
        for (size_t fd = 0; fd < s->fd_waits.cap; fd++)
            if (fd_slot_has_waits(&s->fd_waits.slots[fd])) wake_stale(s, (int)fd);
    }
}

/// After a close of fd (on any thread): the other hubs with waiters on it
/// wake those whose wait began before it (as green_fd_closing did here).
static void tell_waiting_hubs(int fd) {
    uint64_t hubs = fd_hubs_waiting(fd);
    while (hubs) {
        int bit = __builtin_ctzll(hubs);
        hubs &= hubs - 1;
        green_sched *h = green_share_member(bit);
        if (h) green_sched_post_closed_fd(h, fd);
    }
}

// ---- waits on the edge set (GREEN_WAIT_DRAINED, GREEN_WAIT_SHORT_READ) ------------
//
// The caller drained the socket, so the next edge (bytes arriving, room
// freed) is what it waits for, and the socket stays registered in the hub's
// edge set across waits: a wait names its fiber in the number's slot and
// parks, with no watcher and no epoll_ctl. An edge sets the slot's ready
// bit and wakes the fiber; the bit is taken only when a wait returns to a
// caller that calls again, so that one which came while nobody waited, or
// while the fiber was woken for something else, stays for the next wait
// (which returns at once). Go's netpoller keeps its pollDesc the same way.

/// green_wait_fd for a caller that drained fd; -1 (nothing done) where the
/// edge set cannot serve it: libev's wait then does.
__attribute__((always_inline)) static inline int edge_wait(green_sched *s, int fd, int events, int64_t deadline,
                                                           int flags, int *revents) {
    events &= EV_READ | EV_WRITE;
    if (fd < 0 || (events != EV_READ && events != EV_WRITE) || fd_index_reserve(s, fd) != 0) return -1;
    green_edge_poller *edges = &s->fd_waits.edges;
    if (edges->forked) return -1; // the set is the parent's until the hub's next poll
    green_fd_slot *slot = &s->fd_waits.slots[fd];
    if (events == EV_READ ? slot->edge_reader : slot->edge_writer) return -1; // another fiber waits that way
    if (s->share.bit) fd_hubs_add(fd, s->share.bit); // as in watch(): before the word is read
    uint64_t gen;
    if (!fd_generation_get(fd, &gen)) return -1; // a close under way: libev's wait, with its checks
    if (slot->edge_word != gen + 1) { // not in the set for this file yet
        if (edge_poller_register(s, fd, slot) != 0) {
            slot->edge_word = 0;
            return -1;
        }
        slot->edge_word = gen + 1;
    } else {
        // An edge not taken yet: the caller calls again (and waits anew on
        // EAGAIN). A wait before a read (after a short one) also returns for
        // a lasting state: the end of the stream, a hang-up, or urgent data
        // (the read may have stopped at its mark). After EAGAIN those are
        // over (a socket at its end reads 0, a hung-up one fails: neither
        // says EAGAIN): the wait forgets them, so a socket connected anew
        // (connect(AF_UNSPEC), then connect) waits again.
        uint8_t state = slot->edge_ready;
        int now = state & events;
        if (flags & GREEN_WAIT_SHORT_READ) {
            if (state & (EDGE_READ_CLOSED | EDGE_URGENT)) now = events;
        } else {
            state &= (uint8_t)~(events << 2 | (events & EV_READ ? EDGE_URGENT : 0));
        }
        slot->edge_ready = (uint8_t)(state & ~now);
        if (now) {
            if (revents) *revents = now;
            return GREEN_WAKE_NORMAL;
        }
    }
    note_started(s, fd, gen); // a close by a thread that tells no hub is caught before the poll
    green_fiber *self = s->run.current;
    if (events == EV_READ) slot->edge_reader = self;
    else slot->edge_writer = self;
    self->pins++; // named in this hub's slot until it returns
    self->wait_label = "fd";
    self->wait_fd = fd;
    self->wait_events = events;
    if (edges->waiting++ == 0) ev_ref(s->loop);
    flags &= ~(GREEN_WAIT_DRAINED | GREEN_WAIT_SHORT_READ);
    int r = deadline == GREEN_NO_DEADLINE ? green_park(flags) : green_park_until(deadline, flags);
    if (--edges->waiting == 0) ev_unref(s->loop);
    self->pins--;
    slot = &s->fd_waits.slots[fd]; // (the table may have grown meanwhile)
    green_fiber **named = events == EV_READ ? &slot->edge_reader : &slot->edge_writer;
    if (*named != self) {
        // edge_waits_end took it out: EBADF if its file closed since the wait
        // began (whatever woke the fiber first, and whatever a signal
        // handler's resume hook made of the wake's reason), else the wake's.
        uint64_t now;
        bool closed = !fd_generation_get(fd, &now) || fd_generation_own_part(now) != fd_generation_own_part(gen);
        if (revents) *revents = 0;
        return closed ? GREEN_WAKE_FD_CLOSED : r;
    }
    *named = NULL;
    if (r == GREEN_WAKE_NORMAL) slot->edge_ready &= (uint8_t)~events; // taken: the caller calls again now
    if (revents) *revents = r == GREEN_WAKE_NORMAL ? events : 0;
    return r;
}

int green_wait_fd(int fd, int events, int64_t deadline, int flags, int *revents) {
    green_sched *s = green_tls_sched;
    if (flags & (GREEN_WAIT_DRAINED | GREEN_WAIT_SHORT_READ)) {
        int r = edge_wait(s, fd, events, deadline, flags, revents);
        if (r >= 0) return r;
        flags &= ~(GREEN_WAIT_DRAINED | GREEN_WAIT_SHORT_READ);
    }
    green_fd_wait own, *fw = kept_watcher(s, fd); // (watch() sets the other fields)
    if (!fw) {
        own.kept = false; // a watcher of its own, stopped when the wait ends
        fw = &own;
    }
    if (watch(s, fw, fd, events) != 0) {
        if (revents) *revents = 0;
        return GREEN_WAKE_FD_CLOSED;
    }
    green_fiber *self = s->run.current;
    self->pins++; // its watcher is this hub's until unwatch
    int r;
    do { // a wake-up that brought no event (the fiber ran a signal handler) waits again
        s->run.current->wait_label = "fd";
        s->run.current->wait_fd = fd;
        s->run.current->wait_events = events;
        r = deadline == GREEN_NO_DEADLINE ? green_park(flags) : green_park_until(deadline, flags); // (the common case without the call)
    } while (r == GREEN_WAKE_NORMAL && !fw->revents && !fw->closed);
    bool closed = fw->closed; // read before unwatch frees a kept watcher for others
    int got = fw->revents & (EV_READ | EV_WRITE);
    unwatch(s, fw);
    self->pins--;
    if (revents) *revents = got;
    return closed ? GREEN_WAKE_FD_CLOSED : r;
}

int green_wait_fds(const int *fds, const int *events, int n, int64_t deadline, int flags) {
    green_sched *s = green_tls_sched;
    if (n == 1) return green_wait_fd(fds[0], events[0], deadline, flags, NULL);
    green_fd_wait local[16];
    green_fd_wait *w = n <= 16 ? local : malloc((size_t)n * sizeof *w);
    if (!w) return green_park_until(deadline, flags); // degrade to a timed wait
    green_fiber *self = s->run.current;
    self->pins++; // its watchers are this hub's until unwatch
    int registered = 0;
    for (int i = 0; i < n; i++) {
        w[registered].kept = false; // each its own, on this stack (or heap)
        if (watch(s, &w[registered], fds[i], events[i]) == 0) registered++;
    }
    int r;
    for (;;) {
        s->run.current->wait_label = "poll";
        r = green_park_until(deadline, flags);
        if (r != GREEN_WAKE_NORMAL) break;
        int any = 0; // a wake-up that brought no event (a signal handler ran) waits again
        for (int i = 0; i < registered && !any; i++) any = w[i].revents || w[i].closed;
        if (any || !registered) break;
    }
    for (int i = 0; i < registered; i++) unwatch(s, &w[i]);
    self->pins--;
    if (w != local) free(w);
    return r;
}

void fd_waits_before_poll(green_sched *s) {
    green_fd_wait_table *t = &s->fd_waits;
    edge_poller_before_poll(s);
    // Kept watchers nobody attached to since their wait ended stop now.
    for (green_fd_wait *k = t->idle, *next; k; k = next) {
        next = k->idle_next;
        k->idle_listed = false;
        if (!k->fiber && ev_is_active(&k->io)) ev_io_stop(s->loop, &k->io);
    }
    t->idle = NULL;
    for (size_t i = 0; i < t->started_count; i++) {
        int fd = t->started[i].fd;
        if (!fd_slot_has_waits(&t->slots[fd])) continue; // its waits are over
        uint64_t now;
        bool trusted = fd_generation_get(fd, &now);
        if (trusted && now == t->started[i].word) continue; // no close since: the common case
        // A close since (or under way): the number may name a new file that
        // the wait was started on, or nothing. Only the kernel can tell, and
        // only "nothing" must not reach libev (it aborts on EBADF).
        if (GREEN_SYSCALL(SYS_fcntl, fd, F_GETFD) < 0 && errno == EBADF) wake_closed(s, fd);
    }
    t->started_count = 0;
}

void green_fd_closing(int fd) {
    if (fd < 0) return;
    fd_generation_closing((unsigned)fd, (unsigned)fd); // until green_fd_closed no hub trusts a registration
    green_sched *s = green_tls_sched;
    if (!s) return;
    // In a signal handler the hub's lists and loop may be half changed by
    // the code it interrupted: the hub wakes the waiters once the handler
    // returned (its inbox, as for another hub's close: after this close, so
    // they began on the closed file and end with EBADF).
    if (green_tls_in_signal_handler) green_sched_post_closed_fd(s, fd);
    else if ((size_t)fd < s->fd_waits.cap) wake_closed(s, fd);
}

void green_fd_closed(int fd) {
    if (fd < 0) return;
    fd_generation_closed((unsigned)fd, (unsigned)fd);
    tell_waiting_hubs(fd);
}

void green_fd_replacing(int fd) {
    if (fd >= 0) fd_generation_closing((unsigned)fd, (unsigned)fd);
}

void green_fd_replaced(int fd, bool replaced) {
    if (fd < 0) return;
    if (!replaced) { // the file stays: its word goes back to what it was
        fd_generation_undo_closing((unsigned)fd);
        return;
    }
    // Nothing of this hub ran since green_fd_replacing, and libev acts on a
    // stopped watcher only at its next poll: waking now is as waking before.
    green_sched *s = green_tls_sched;
    if (s && green_tls_in_signal_handler) green_sched_post_closed_fd(s, fd); // see green_fd_closing
    else if (s && (size_t)fd < s->fd_waits.cap) wake_closed(s, fd);
    fd_generation_closed((unsigned)fd, (unsigned)fd);
    tell_waiting_hubs(fd);
}

void green_fd_closing_range(unsigned first, unsigned last) {
    if (first > last) return;
    fd_generation_closing(first, last);
    green_sched *s = green_tls_sched;
    if (s && green_tls_in_signal_handler) { // see green_fd_closing; the lists may not even be read
        green_sched_post_closed_all(s);
        return;
    }
    if (!s || first >= s->fd_waits.cap) return;
    size_t end = last < s->fd_waits.cap ? (size_t)last + 1 : s->fd_waits.cap;
    for (size_t fd = first; fd < end; fd++)
        if (fd_slot_has_waits(&s->fd_waits.slots[fd]) || s->fd_waits.slots[fd].kept) wake_closed(s, (int)fd);
}

void green_fd_closed_range(unsigned first, unsigned last) {
    // Each number some hub waited on gets a generation of its own too, before
    // the range's close ends: a wait begun on its closed file then ends with
    // EBADF (its own part moved), never as ready on a new file under the
    // number. (The range word alone cannot tell which numbers it closed.)
    fd_hubs_each_waited(first, last, fd_generation_moved);
    fd_generation_closed(first, last);
    fd_hubs_each_waited(first, last, tell_waiting_hubs);
}

bool green_fd_generation(int fd, uint64_t *word) { return fd_generation_get(fd, word); }

void green_fd_opened(int fd) { fd_generation_moved(fd); }

