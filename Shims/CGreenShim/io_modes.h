// io_modes.h — how a call on an fd is performed on a fiber, shared by the
// read/write engine (io.c) and the socket calls (sockets.c).
#ifndef GREEN_SHIM_IO_MODES_H
#define GREEN_SHIM_IO_MODES_H

#include "shim.h"
#include <fcntl.h>
#include <poll.h>

GREEN_HIDDEN_BEGIN

enum mode {
    PASS,       ///< call libc as is (not on a fiber, user's O_NONBLOCK, regular file…)
    NONBLOCK,   ///< the fd is ours and non-blocking: call, park on EAGAIN, retry
    DONTWAIT,   ///< a socket we did not create: add MSG_DONTWAIT to each call
    WAIT_FIRST, ///< a pipe or terminal we did not create: wait for readiness, then call
};

static inline int mode_for(int fd, fd_info **out) {
    if (!green_on_fiber()) return PASS;
    fd_info *e = shim_fd_classify(fd);
    *out = e;
    if (!e || FD_LOAD(e, user_nonblock)) return PASS;
    switch (FD_KIND(e)) {
    case FD_MANAGED: return NONBLOCK;
    case FD_SOCKET: return DONTWAIT;
    case FD_STREAM: return WAIT_FIRST;
    default: return PASS;
    }
}

/// The record said "socket" but the fd is not one: its number was closed by a
/// path the shim cannot see and reused. Forget it and classify afresh.
/// Returns the fd's mode now. (No new generation: whatever made the new
/// file may have given it one already, and a fiber may wait on that file:
/// a second one would end its wait as one on a closed file.)
static inline int reclassify(int fd, fd_info **e) {
    shim_fd_forget(fd);
    return mode_for(fd, e);
}

/// Ready right now? (a zero-timeout poll; 1 also for errors, so the call reports them)
static inline int ready_now(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    return REAL(poll)(&p, 1, 0) != 0;
}

/// The call would have blocked (the fd is non-blocking underneath).
static inline int would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK; }

/// Fds a received message passed with SCM_RIGHTS are new files under their
/// numbers, as a socket() or a dup is (shim_fd_new_file). errno unchanged.
void shim_note_received_fds(const struct msghdr *msg);

/// send() for the rest of a message its call already sent part of
/// (sendmmsg on a stream): a signal handler ends its waits, SA_RESTART or
/// not, as for any call that moved bytes (shim_wait_ready_after).
ssize_t shim_send_rest(int fd, const void *buf, size_t n, int flags);

GREEN_HIDDEN_END

#endif
