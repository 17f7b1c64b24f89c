// The practical ceiling for the HTTP benchmark: a minimal C server on
// level-triggered epoll that answers every request head ("…\r\n\r\n") with
// the same 200 "Hello, World!" response as Green's http-server, keep-alive,
// pipelined requests answered in one write. It reads no bodies and checks
// nothing else: it is a ceiling, not a server. THREADS threads each run
// their own epoll loop on their own SO_REUSEPORT listener.
//
//   c-epoll-http PORT [THREADS]
#define _GNU_SOURCE // accept4, memmem
#include "bench_support.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { READ_SIZE = 16384, MAX_EVENTS = 256 };

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// One client: unparsed input and unwritten output.
typedef struct {
    int fd;
    char in[READ_SIZE];
    size_t in_len;
    char *out;
    size_t out_len, out_off, out_cap;
} Connection;

/// Register or change what epoll watches for a connection.
static void watch(int epfd, Connection *c, int op, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0) bench_die_errno("c-epoll-http", "epoll_ctl");
}

/// Close a connection and free it.
static void drop(Connection *c) {
    close(c->fd);
    free(c->out);
    free(c);
}

/// Accept every waiting connection.
static void accept_all(int epfd, int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == ECONNABORTED || errno == EINTR) return;
            bench_die_errno("c-epoll-http", "accept4");
        }
        Connection *c = calloc(1, sizeof *c);
        c->fd = fd;
        watch(epfd, c, EPOLL_CTL_ADD, EPOLLIN);
    }
}

/// Append one response to c's output.
static void queue_response(Connection *c) {
    size_t need = c->out_len + sizeof RESPONSE - 1;
    if (need > c->out_cap) {
        c->out_cap = need * 2;
        c->out = realloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, RESPONSE, sizeof RESPONSE - 1);
    c->out_len = need;
}

/// Write c's output. 0: all written; 1: some left; -1: failed.
static int flush(Connection *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN ? 1 : -1;
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    return 0;
}

/// Read, answer every complete request head, write. -1: close it.
static int on_readable(int epfd, Connection *c) {
    if (c->in_len == READ_SIZE) return -1; // a head longer than the buffer
    ssize_t n = read(c->fd, c->in + c->in_len, READ_SIZE - c->in_len);
    if (n == 0) return -1;
    if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->in_len += (size_t)n;
    size_t consumed = 0;
    for (;;) {
        char *end = memmem(c->in + consumed, c->in_len - consumed, "\r\n\r\n", 4);
        if (end == NULL) break;
        consumed = (size_t)(end - c->in) + 4;
        queue_response(c);
    }
    memmove(c->in, c->in + consumed, c->in_len - consumed);
    c->in_len -= consumed;
    int r = flush(c);
    if (r == 1) watch(epfd, c, EPOLL_CTL_MOD, EPOLLOUT);
    return r < 0 ? -1 : 0;
}

/// One thread's server: its own listener and epoll loop, forever.
static void *serve(void *arg) {
    int port = *(int *)arg;
    int listener = bench_listen(port, 1);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) bench_die_errno("c-epoll-http", "epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev) != 0) bench_die_errno("c-epoll-http", "epoll_ctl");
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            bench_die_errno("c-epoll-http", "epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            Connection *c = events[i].data.ptr;
            if (c == NULL) {
                accept_all(epfd, listener);
                continue;
            }
            int r;
            if (events[i].events & EPOLLOUT) {
                r = flush(c);
                if (r == 0) watch(epfd, c, EPOLL_CTL_MOD, EPOLLIN);
                if (r > 0) r = 0;
            } else {
                r = on_readable(epfd, c);
            }
            if (r < 0 || ((events[i].events & (EPOLLERR | EPOLLHUP)) && !(events[i].events & EPOLLIN))) drop(c);
        }
    }
    return NULL;
}

/// Start THREADS serving threads (the first is the main thread).
int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c-epoll-http PORT [THREADS]\n");
        return 2;
    }
    static int port;
    port = atoi(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (threads < 1) threads = 1;
    printf("c-epoll-http on http://127.0.0.1:%d/ with %d thread(s)\n", port, threads);
    fflush(stdout);
    for (int i = 1; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, serve, &port) != 0) bench_die_errno("c-epoll-http", "pthread_create");
    }
    serve(&port);
}
