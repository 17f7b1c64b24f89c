// The echo load generator (the uvloop/vmbench method), one for every
// server: N connections on one thread and epoll; each sends a message of
// SIZE bytes, waits until all of it has come back, and sends the next.
// Every echoed byte is compared with what was sent; a mismatch, an extra
// byte, an error, a closed connection or a stall is fatal (exit 1).
//
//   echo-load PORT CONNECTIONS SIZE SECONDS [WARMUP_SECONDS]
//
// Requests completed during the SECONDS after the warm-up are counted and
// their latencies kept; afterwards every connection finishes the request it
// has in flight, so every byte sent is checked. One line of results:
//   requests=… rps=… p50_us=… p99_us=… max_us=… total_requests=… sent_bytes=… echoed_bytes=… errors=0
// (total_requests also counts the warm-up and the final in-flight ones).
#include "bench_support.h"
#include "latencies.h"
#include "pattern.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { READ_SIZE = 256 * 1024, MAX_EVENTS = 512 };
static const uint64_t STALL_NS = 5000000000ull;   // no byte back for this long: the server is stuck
static const uint64_t CONNECT_NS = 10000000000ull; // all connections up within this

/// One client connection and the request it has in flight.
typedef struct {
    int fd, index;
    int connected, writing, done;
    uint64_t seq;             // this request's number on the connection
    size_t sent, received;    // of the current request
    uint64_t started_ns;
} Client;

static int epfd;
static size_t message_size;
static unsigned char *pattern;
static unsigned char read_buffer[READ_SIZE];
static uint64_t sent_bytes, echoed_bytes, total_requests;

/// Report a fatal error for connection c and exit.
static void fail(const Client *c, const char *what) {
    fprintf(stderr, "echo-load: error: connection %d, request %" PRIu64 ": %s%s%s\n", c->index, c->seq, what,
            errno ? ": " : "", errno ? strerror(errno) : "");
    exit(1);
}

/// Change what epoll watches on c: input always, output while a message is
/// only partly sent.
static void watch(Client *c, int op, int want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0) fail(c, "epoll_ctl");
    c->writing = want_out;
}

/// Send as much of the current message as the socket takes now.
static void send_more(Client *c) {
    const unsigned char *msg = pattern + pattern_offset(c->index, c->seq);
    while (c->sent < message_size) {
        ssize_t n = send(c->fd, msg + c->sent, message_size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) break;
            fail(c, "send");
        }
        c->sent += (size_t)n;
        sent_bytes += (uint64_t)n;
    }
    int want_out = c->sent < message_size;
    if (want_out != c->writing) watch(c, EPOLL_CTL_MOD, want_out);
}

/// Start request number c->seq + 1 (or the first) now.
static void start_request(Client *c, uint64_t now) {
    c->sent = c->received = 0;
    c->started_ns = now;
    send_more(c);
}

/// Open every connection and wait until all are established.
static Client *connect_all(int port, int count) {
    Client *clients = calloc((size_t)count, sizeof *clients);
    for (int i = 0; i < count; i++) {
        Client *c = &clients[i];
        c->index = i;
        c->fd = bench_connect_start(port);
        if (c->fd < 0) fail(c, "connect");
        bench_set_nodelay(c->fd);
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) fail(c, "epoll_ctl");
    }
    int pending = count;
    uint64_t deadline = bench_now_ns() + CONNECT_NS;
    struct epoll_event events[MAX_EVENTS];
    while (pending > 0) {
        if (bench_now_ns() > deadline) {
            errno = 0;
            fprintf(stderr, "echo-load: error: %d of %d connections not established in 10 s\n", pending, count);
            exit(1);
        }
        int n = epoll_wait(epfd, events, MAX_EVENTS, 100);
        for (int i = 0; i < n; i++) {
            Client *c = events[i].data.ptr;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                errno = err;
                fail(c, "connect");
            }
            if (!c->connected) {
                c->connected = 1;
                pending--;
                watch(c, EPOLL_CTL_MOD, 0);
            }
        }
    }
    return clients;
}

/// Read what arrived for c and compare it with what was sent. Returns 1
/// when the whole echo of the current request is back.
static int receive(Client *c) {
    ssize_t n = read(c->fd, read_buffer, READ_SIZE);
    if (n == 0) {
        errno = 0;
        fail(c, "the server closed the connection");
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return 0;
        fail(c, "read");
    }
    if (c->received + (size_t)n > c->sent) {
        errno = 0;
        fail(c, "more bytes came back than were sent");
    }
    const unsigned char *expected = pattern + pattern_offset(c->index, c->seq) + c->received;
    if (memcmp(read_buffer, expected, (size_t)n) != 0) {
        errno = 0;
        fail(c, "an echoed byte differs from the one sent");
    }
    c->received += (size_t)n;
    echoed_bytes += (uint64_t)n;
    return c->received == message_size;
}

/// Parse a positive number argument or exit with the usage.
static long positive(const char *text) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*end != '\0' || v <= 0) {
        fprintf(stderr, "usage: echo-load PORT CONNECTIONS SIZE SECONDS [WARMUP_SECONDS]\n");
        exit(2);
    }
    return v;
}

/// Run the load and print one line of results.
int main(int argc, char **argv) {
    if (argc < 5) positive("");
    int port = (int)positive(argv[1]);
    int count = (int)positive(argv[2]);
    message_size = (size_t)positive(argv[3]);
    double seconds = strtod(argv[4], NULL);
    double warmup = argc > 5 ? strtod(argv[5], NULL) : 0.5;
    if (seconds <= 0) positive("");
    pattern = pattern_make(message_size);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) bench_die_errno("echo-load", "epoll_create1");

    Client *clients = connect_all(port, count);
    uint64_t start = bench_now_ns();
    uint64_t window_start = start + (uint64_t)(warmup * 1e9);
    uint64_t window_end = window_start + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < count; i++) start_request(&clients[i], start);

    Latencies latencies = {0};
    uint64_t last_progress = start;
    int in_flight = count;
    struct epoll_event events[MAX_EVENTS];
    while (in_flight > 0) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, 100);
        if (n < 0 && errno != EINTR) bench_die_errno("echo-load", "epoll_wait");
        uint64_t now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            Client *c = events[i].data.ptr;
            if (c->done) continue;
            if (events[i].events & EPOLLOUT) send_more(c);
            if (!(events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            if (!receive(c)) continue;
            last_progress = now;
            total_requests++;
            if (now >= window_start && now < window_end) latencies_add(&latencies, now - c->started_ns);
            if (now < window_end) {
                c->seq++;
                start_request(c, now);
            } else {
                c->done = 1;
                in_flight--;
            }
        }
        if (now - last_progress > STALL_NS) {
            fprintf(stderr, "echo-load: error: no echo completed for 5 s (%d requests in flight): the server stalled\n",
                    in_flight);
            return 1;
        }
    }
    for (int i = 0; i < count; i++) close(clients[i].fd);
    if (sent_bytes != echoed_bytes) {
        fprintf(stderr, "echo-load: error: %" PRIu64 " bytes sent, %" PRIu64 " echoed\n", sent_bytes, echoed_bytes);
        return 1;
    }
    size_t requests = latencies.count;
    double p50 = (double)latencies_percentile(&latencies, 50) / 1000.0;
    double p99 = (double)latencies_percentile(&latencies, 99) / 1000.0;
    double max = (double)latencies_percentile(&latencies, 100) / 1000.0;
    printf("requests=%zu rps=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f total_requests=%" PRIu64 " sent_bytes=%" PRIu64
           " echoed_bytes=%" PRIu64 " errors=0\n",
           requests, (double)requests / seconds, p50, p99, max, total_requests, sent_bytes, echoed_bytes);
    return 0;
}
