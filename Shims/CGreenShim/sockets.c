// sockets.c — making sockets and pipes, accepting and connecting. Sockets
// made on a fiber are non-blocking underneath (the program sees the flags it
// asked for); pipes stay blocking, since a child process may inherit them.
#include "io_modes.h"

GREEN_EXPORT int socket(int domain, int type, int protocol) {
    if (!green_on_fiber()) {
        int fd = REAL(socket)(domain, type, protocol);
        if (fd >= 0) shim_fd_new_file(fd);
        return fd;
    }
    int fd = REAL(socket)(domain, type | SOCK_NONBLOCK, protocol);
    if (fd >= 0) {
        shim_fd_adopt(fd, 1, (type & SOCK_NONBLOCK) != 0);
        shim_fd_note_type(fd, type);
    }
    return fd;
}

GREEN_EXPORT int socketpair(int domain, int type, int protocol, int sv[2]) {
    if (!green_on_fiber()) {
        int r = REAL(socketpair)(domain, type, protocol, sv);
        if (r == 0) { shim_fd_new_file(sv[0]); shim_fd_new_file(sv[1]); }
        return r;
    }
    int r = REAL(socketpair)(domain, type | SOCK_NONBLOCK, protocol, sv);
    if (r == 0) {
        shim_fd_adopt(sv[0], 1, (type & SOCK_NONBLOCK) != 0);
        shim_fd_adopt(sv[1], 1, (type & SOCK_NONBLOCK) != 0);
        shim_fd_note_type(sv[0], type);
        shim_fd_note_type(sv[1], type);
    }
    return r;
}

// Pipes stay blocking (a child process may inherit them); the shim waits for
// readiness before each call on them instead.
GREEN_EXPORT int pipe2(int fds[2], int flags) {
    int r = REAL(pipe2)(fds, flags);
    if (r == 0) { shim_fd_new_file(fds[0]); shim_fd_new_file(fds[1]); }
    return r;
}

GREEN_EXPORT int pipe(int fds[2]) {
    int r = REAL(pipe)(fds);
    if (r == 0) { shim_fd_new_file(fds[0]); shim_fd_new_file(fds[1]); }
    return r;
}

GREEN_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags) {
    // The fair turn before the listener's record is read, which is read
    // again after each wait: a fiber that ran meanwhile may have started a
    // child, which gives the listener back its blocking kernel flag
    // (fdtable.c: sockets shared with another process).
    green_fair_check();
    fd_info *e = NULL;
    int m = mode_for(fd, &e);
    if (m == PASS) {
        int c = REAL(accept4)(fd, addr, addrlen, flags);
        if (c >= 0) shim_fd_new_file(c);
        return c;
    }
    int64_t deadline = shim_deadline_after(FD_LOAD(e, rcv_timeout));
    for (;;) {
        // A listening socket we did not create stays blocking: wait first.
        if (m != NONBLOCK && !ready_now(fd, POLLIN) && shim_wait_ready(fd, GREEN_READ, deadline) != 0) return -1;
        int c = REAL(accept4)(fd, addr, addrlen, flags | SOCK_NONBLOCK);
        if (c >= 0) {
            shim_fd_adopt(c, 1, (flags & SOCK_NONBLOCK) != 0);
            fd_info *ce = shim_fd_get(c);
            if (ce) FD_STORE(ce, messages, FD_LOAD(e, messages)); // seqpacket listeners accept seqpacket sockets
            return c;
        }
        if (!would_block()) return -1;
        if (m == NONBLOCK && shim_wait_ready(fd, GREEN_READ, deadline) != 0) return -1;
        fd_info *now_e = NULL;
        int now = mode_for(fd, &now_e);
        if (now == NONBLOCK || now == DONTWAIT) { // else (closed, O_NONBLOCK set meanwhile) the kernel answers next
            m = now;
            e = now_e;
        }
    }
}

GREEN_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *addrlen) {
    if (!green_on_fiber()) {
        int c = REAL(accept)(fd, addr, addrlen);
        if (c >= 0) shim_fd_new_file(c);
        return c;
    }
    return accept4(fd, addr, addrlen, 0);
}

GREEN_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    fd_info *e = NULL;
    int m = mode_for(fd, &e);
    if (m == PASS || m == WAIT_FIRST) return REAL(connect)(fd, addr, len);
    if (m == DONTWAIT) {
        // A blocking socket made before the hub existed: adopt it now, so the
        // connect and everything after it can park.
        int fl = REAL(fcntl)(fd, F_GETFL);
        if (fl < 0 || REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) != 0) return REAL(connect)(fd, addr, len);
        int64_t rcv = FD_LOAD(e, rcv_timeout), snd = FD_LOAD(e, snd_timeout);
        uint8_t messages = FD_LOAD(e, messages);
        shim_fd_adopt(fd, 1, 0);
        FD_STORE(e, rcv_timeout, rcv);
        FD_STORE(e, snd_timeout, snd);
        FD_STORE(e, messages, messages);
    }
    int64_t deadline = shim_deadline_after(FD_LOAD(e, snd_timeout));
    for (;;) {
        int r = REAL(connect)(fd, addr, len);
        if (r == 0) return 0;
        if (errno == EAGAIN) { // AF_UNIX with a full backlog: wait and try again
            if (shim_wait_ready(fd, GREEN_WRITE, deadline) != 0) return -1;
            continue;
        }
        if (errno != EINPROGRESS) return -1;
        if (shim_wait_ready(fd, GREEN_WRITE, deadline) != 0) {
            if (errno == EAGAIN) errno = EINPROGRESS; // SO_SNDTIMEO expired, as the kernel says it
            return -1;
        }
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return -1;
        if (err) { errno = err; return -1; }
        return 0;
    }
}

// An AF_UNIX socket shut down for writing fails a blocked write with EPIPE,
// but epoll reports nothing for it (unix_poll has no EPOLLOUT for a send
// shutdown, where tcp_poll has): a fiber waiting to write would wait on.
// Its waits end, and each call tries again. (The peer's shutdown(SHUT_RD)
// does the same to this side's writers; that one the shim does not see.)
GREEN_EXPORT int shutdown(int fd, int how) {
    int r = REAL(shutdown)(fd, how);
    if (r != 0 || how == SHUT_RD) return r;
    int saved = errno, domain = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX) green_fd_retry_writers(fd);
    errno = saved;
    return r;
}
