// The practical ceiling for the echo benchmark: a minimal single-threaded
// C server on level-triggered epoll. It writes back what it reads at once;
// whatever the socket does not take is kept for EPOLLOUT, and reading from
// that connection pauses until it is written (back-pressure, as every
// contender has).
//
//   c-epoll-echo PORT
#define _GNU_SOURCE // accept4
#include "bench_support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { READ_SIZE = 65536, MAX_EVENTS = 256 };

/// One client: its socket and the bytes still to be written back.
typedef struct {
    int fd;
    char *pending;
    size_t pending_len, pending_off;
} Connection;

static int epfd;
static char read_buffer[READ_SIZE];

/// Register or change the events epoll watches for a connection.
static void watch(Connection *c, int op, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0) bench_die_errno("c-epoll-echo", "epoll_ctl");
}

/// Close a connection and free what it holds.
static void drop(Connection *c) {
    close(c->fd); // also removes it from the epoll set
    free(c->pending);
    free(c);
}

/// Accept every waiting connection and watch each for input.
static void accept_all(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == ECONNABORTED || errno == EINTR) return;
            bench_die_errno("c-epoll-echo", "accept4");
        }
        bench_set_nodelay(fd);
        Connection *c = calloc(1, sizeof *c);
        c->fd = fd;
        watch(c, EPOLL_CTL_ADD, EPOLLIN);
    }
}

/// Write as much of c's pending bytes as the socket takes. Returns 0 when
/// all are written, 1 when some remain, -1 when the connection failed.
static int flush_pending(Connection *c) {
    while (c->pending_off < c->pending_len) {
        ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
        if (n < 0) return (errno == EAGAIN) ? 1 : -1;
        c->pending_off += (size_t)n;
    }
    c->pending_len = c->pending_off = 0;
    return 0;
}

/// Read what arrived and echo it; keep the unwritten rest and switch the
/// connection to EPOLLOUT until it drains. Returns -1 when it should close.
static int on_readable(Connection *c) {
    ssize_t n = read(c->fd, read_buffer, READ_SIZE);
    if (n == 0) return -1;
    if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    ssize_t sent = send(c->fd, read_buffer, (size_t)n, MSG_NOSIGNAL);
    if (sent < 0) {
        if (errno != EAGAIN) return -1;
        sent = 0;
    }
    if (sent < n) {
        size_t rest = (size_t)(n - sent);
        c->pending = realloc(c->pending, rest);
        memcpy(c->pending, read_buffer + sent, rest);
        c->pending_len = rest;
        c->pending_off = 0;
        watch(c, EPOLL_CTL_MOD, EPOLLOUT);
    }
    return 0;
}

/// Keep writing the pending bytes; once they are out, read again.
static int on_writable(Connection *c) {
    int r = flush_pending(c);
    if (r == 0) watch(c, EPOLL_CTL_MOD, EPOLLIN);
    return r < 0 ? -1 : 0;
}

/// Serve until killed.
int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c-epoll-echo PORT\n");
        return 2;
    }
    int listener = bench_listen(atoi(argv[1]), 0);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) bench_die_errno("c-epoll-echo", "epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev) != 0) bench_die_errno("c-epoll-echo", "epoll_ctl");
    printf("c-epoll-echo on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            bench_die_errno("c-epoll-echo", "epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            Connection *c = events[i].data.ptr;
            if (c == NULL) {
                accept_all(listener);
                continue;
            }
            int r = (events[i].events & EPOLLOUT) ? on_writable(c) : on_readable(c);
            if (r < 0 || ((events[i].events & (EPOLLERR | EPOLLHUP)) && !(events[i].events & EPOLLIN))) drop(c);
        }
    }
}
