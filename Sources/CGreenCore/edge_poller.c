// edge_poller.c — the hub's own edge-triggered epoll set, for the waits of
// callers that drained a socket and call again once woken
// (GREEN_WAIT_DRAINED, GREEN_WAIT_SHORT_READ), as Go's netpoller: a socket
// is registered once per file (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI |
// EPOLLET) and stays so between waits, and an event wakes its fiber
// straight from the set's epoll_wait, where a libev watcher per wait costs
// its start, libev's pending queue and callback, and its stop.
//
// libev watches the set's fd as one more fd (an epoll set is readable while
// events are queued in it), so the hub still blocks in libev's poll alone.
// The set's watcher is unref'd: only waits parked on the set keep the loop
// alive (the hub's "nothing can ever wake the root" check).
//
// A registration outlives the file's close when a dup of the file lives on
// (the kernel drops it with the file's last reference): each registration
// carries a tag, and an event whose tag is not its number's current one is
// dropped. The fiber's side of a wait is fd_waits.c's edge_wait.
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { EVENTS_PER_CALL = 128 };

/// EDGE_* for an epoll event mask. An error makes both calls return once
/// (the call takes it; an error queue's entry is read and gone). The end
/// of the stream and a hang-up make them return, and last (fd_waits.c:
/// until a call says EAGAIN again, as after connect(AF_UNSPEC) and anew).
static int edge_state(uint32_t events) {
    int state = 0;
    if (events & (EPOLLIN | EPOLLERR)) state |= EDGE_READ;
    if (events & (EPOLLOUT | EPOLLERR)) state |= EDGE_WRITE;
    if (events & (EPOLLRDHUP | EPOLLHUP)) state |= EDGE_READ | EDGE_READ_CLOSED;
    if (events & EPOLLHUP) state |= EDGE_WRITE | EDGE_WRITE_CLOSED;
    if (events & EPOLLPRI) state |= EDGE_URGENT;
    return state;
}

/// One event: note it on its number and wake the waits it concerns. The
/// wait takes the edge when it returns to its caller (fd_waits.c).
static inline void deliver(green_sched *s, uint64_t data, uint32_t events) {
    uint32_t fd = (uint32_t)data;
    if (fd >= s->fd_waits.cap) return;
    green_fd_slot *slot = &s->fd_waits.slots[fd];
    if (slot->edge_tag != (uint32_t)(data >> 32) || !slot->edge_word) return; // a file the number named before
    int state = edge_state(events);
    slot->edge_ready |= (uint8_t)state;
    // green_wake wakes only a parked fiber: one already woken (a signal, a
    // deadline) leaves the edge on the number for its caller's next wait.
    if ((state & EDGE_READ) && slot->edge_reader) green_wake(slot->edge_reader, GREEN_WAKE_NORMAL);
    if ((state & EDGE_WRITE) && slot->edge_writer) green_wake(slot->edge_writer, GREEN_WAKE_NORMAL);
}

static void give_up_set(green_sched *s);

/// libev says the set is readable: take every queued event.
static void on_events(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop; (void)w;
    green_sched *s = green_tls_sched;
    if (__builtin_expect(revents & EV_ERROR, 0)) { // libev could not watch the set, and stopped the watcher
        ev_ref(s->loop); // its stop took back a reference the unref'd watcher did not hold
        give_up_set(s);
        return;
    }
    if (s->fd_waits.edges.forked) return; // the parent's events: edge_poller_before_poll lets go first
    struct epoll_event events[EVENTS_PER_CALL];
    for (;;) {
        long n = GREEN_SYSCALL(SYS_epoll_pwait, s->fd_waits.edges.epfd, events, EVENTS_PER_CALL, 0, NULL, (size_t)8);
        if (n < 0 && errno == EINTR) continue;
        for (long i = 0; i < n; i++) deliver(s, events[i].data.u64, events[i].events);
        if (n < EVENTS_PER_CALL) return;
    }
}

/// Make the set and its libev watcher (out of line: once per hub).
__attribute__((noinline, cold)) static int make_set(green_sched *s) {
    green_edge_poller *p = &s->fd_waits.edges;
    if (p->unusable) return -1;
    // One of the core's own fds, as libev's are (internal_fds.c in the shim
    // moves it out of the program's way and hides it from its close()).
    green_tls_making_internal_fds++;
    int fd = epoll_create1(EPOLL_CLOEXEC);
    green_tls_making_internal_fds--;
    if (fd < 0) {
        p->unusable = true; // out of fds or memory now: libev serves this hub's waits from here on
        return -1;
    }
    p->epfd = fd;
    ev_io_init(&p->watcher, on_events, fd, EV_READ);
    ev_io_start(s->loop, &p->watcher);
    ev_unref(s->loop); // see the top: parked waits hold the loop, not the watcher
    return 0;
}

int edge_poller_register(green_sched *s, int fd, green_fd_slot *slot) {
    green_edge_poller *p = &s->fd_waits.edges;
    if (__builtin_expect(p->epfd < 0, 0) && make_set(s) != 0) return -1;
    if (++p->next_tag == 0) p->next_tag = 1; // 0 means "not registered"
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
                             .data.u64 = (uint64_t)p->next_tag << 32 | (uint32_t)fd};
    long r = GREEN_SYSCALL(SYS_epoll_ctl, p->epfd, EPOLL_CTL_ADD, fd, &ev);
    // Already there: the same file came back under the number (a dup2 of
    // a dup, a close that failed). A new tag, and its state reported anew.
    if (r != 0 && errno == EEXIST) r = GREEN_SYSCALL(SYS_epoll_ctl, p->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (r != 0) return -1; // EBADF, EPERM, ENOMEM, ENOSPC: libev's wait gives the caller the kernel's answer
    slot->edge_tag = p->next_tag;
    slot->edge_ready = 0; // the kernel queues the file's state now as its first event
    return 0;
}

/// Close the set's fd: it is the core's, so the shim lets it go.
static void close_set(green_edge_poller *p) {
    green_tls_making_internal_fds++;
    close(p->epfd);
    green_tls_making_internal_fds--;
    p->epfd = -1;
}

/// Forget every registration and wake the waits parked on the set: they
/// call again, and wait anew (in a new set, or libev's). The set's fd is
/// closed and its watcher stopped already.
static void forget_registrations(green_sched *s) {
    for (size_t fd = 0; fd < s->fd_waits.cap; fd++) {
        green_fd_slot *slot = &s->fd_waits.slots[fd];
        slot->edge_tag = 0;
        slot->edge_word = 0;
        slot->edge_ready = 0;
        if (slot->edge_reader) green_wake(slot->edge_reader, GREEN_WAKE_NORMAL);
        if (slot->edge_writer) green_wake(slot->edge_writer, GREEN_WAKE_NORMAL);
    }
}

void edge_poller_before_poll(green_sched *s) {
    green_edge_poller *p = &s->fd_waits.edges;
    if (__builtin_expect(!p->forked, 1)) return;
    p->forked = false;
    if (p->epfd < 0) return;
    ev_ref(s->loop); // libev's rule for stopping an unref'd watcher
    ev_io_stop(s->loop, &p->watcher);
    close_set(p);
    forget_registrations(s); // every registration was in the parent's set
}

/// libev cannot watch the set (out of epoll watches or memory): this hub's
/// waits go through libev from now on.
static void give_up_set(green_sched *s) {
    green_edge_poller *p = &s->fd_waits.edges;
    close_set(p);
    p->unusable = true;
    forget_registrations(s);
}

void edge_poller_forget_done(green_sched *s) {
    green_edge_poller *p = &s->fd_waits.edges;
    size_t waiting = 0;
    for (size_t fd = 0; fd < s->fd_waits.cap; fd++) {
        green_fd_slot *slot = &s->fd_waits.slots[fd];
        if (slot->edge_reader && slot->edge_reader->state == GREEN_FIBER_DONE) slot->edge_reader = NULL;
        if (slot->edge_writer && slot->edge_writer->state == GREEN_FIBER_DONE) slot->edge_writer = NULL;
        waiting += (slot->edge_reader != NULL) + (slot->edge_writer != NULL);
    }
    if (p->waiting && !waiting) ev_unref(s->loop);
    if (!p->waiting && waiting) ev_ref(s->loop);
    p->waiting = waiting;
}

void edge_poller_destroy(green_sched *s) {
    if (s->fd_waits.edges.epfd >= 0) close_set(&s->fd_waits.edges);
}
