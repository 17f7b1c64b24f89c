/* own_event_loop.c — a program's own epoll event loop (as redis's ae or
 * libuv run one) on a thread, serving other threads: busy (32 clients
 * keeping requests in flight, so events are usually pending when it asks)
 * and idle (one client pausing between requests, so every turn waits),
 * with level- and edge-triggered fds, a loop timeout that expires with
 * nothing to do, events already pending under a short timeout, and
 * epoll_pwait with a signal mask. Every reply is checked. */
#include "check.h"
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define CLIENTS 32
#define ROUNDS 300

static int server_ends[CLIENTS + 1];
static int client_ends[CLIENTS + 1];
static volatile int stop_loop;
static long served, timeouts;

/* The loop: reads a 4-byte number from each ready socket and writes it
 * back plus one; edge-triggered sockets are drained until EAGAIN. */
static void *event_loop(void *arg) {
    int n = *(int *)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    for (int i = 0; i < n; i++) {
        fcntl(server_ends[i], F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN | (i % 2 ? EPOLLET : 0), .data.u32 = (uint32_t)i};
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, server_ends[i], &e) == 0);
    }
    struct epoll_event ev[16];
    sigset_t none;
    sigemptyset(&none);
    for (long turn = 0; !stop_loop; turn++) {
        int r = turn % 3 ? epoll_wait(ep, ev, 16, 50) : epoll_pwait(ep, ev, 16, 50, &none);
        CHECK(r >= 0);
        if (r == 0) __atomic_add_fetch(&timeouts, 1, __ATOMIC_SEQ_CST);
        for (int k = 0; k < r; k++) {
            int fd = server_ends[ev[k].data.u32];
            uint32_t v;
            ssize_t got;
            while ((got = read(fd, &v, sizeof v)) == sizeof v) {
                v++;
                CHECK(write(fd, &v, sizeof v) == sizeof v);
                served++;
                if (!(ev[k].data.u32 % 2)) break; /* level-triggered: the next turn reports the rest */
            }
            CHECK(got == sizeof v || (got < 0 && errno == EAGAIN) || got == 0);
        }
    }
    close(ep);
    return NULL;
}

static void *client(void *arg) {
    long id = (long)arg;
    int fd = client_ends[id];
    for (uint32_t i = 0; i < ROUNDS; i++) {
        uint32_t v = (uint32_t)id * 100000u + i, back = 0;
        CHECK(write(fd, &v, sizeof v) == sizeof v);
        CHECK(read(fd, &back, sizeof back) == sizeof back);
        CHECK(back == v + 1);
    }
    return NULL;
}

static void start_pairs(int n) {
    for (int i = 0; i < n; i++) {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        server_ends[i] = sv[0];
        client_ends[i] = sv[1];
    }
}

static void close_pairs(int n) {
    for (int i = 0; i < n; i++) {
        close(server_ends[i]);
        close(client_ends[i]);
    }
}

static int nest_pipe[2];

static void *write_later(void *arg) {
    (void)arg;
    sleep_ms(50);
    CHECK(write(nest_pipe[1], "n", 1) == 1);
    return NULL;
}

/* Epoll sets nested four deep (as deep as epoll allows, so a fifth level —
 * a hub watching the outermost — is refused with ELOOP): waits on the
 * outermost still end at the timeout, and at an event in the innermost. */
static void nested_sets(void) {
    int e[5];
    CHECK(pipe(nest_pipe) == 0);
    e[0] = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = nest_pipe[0]}, out[4];
    CHECK(epoll_ctl(e[0], EPOLL_CTL_ADD, nest_pipe[0], &ev) == 0);
    for (int i = 1; i < 5; i++) {
        e[i] = epoll_create1(0);
        ev.data.fd = e[i - 1];
        CHECK(epoll_ctl(e[i], EPOLL_CTL_ADD, e[i - 1], &ev) == 0);
    }
    int lowest = dup(0);
    close(lowest);
    struct timespec t0 = ts_now(CLOCK_MONOTONIC);
    errno = 0;
    CHECK(epoll_wait(e[4], out, 4, 100) == 0);
    CHECK(errno == 0); /* a call that succeeds leaves errno alone (the library's check of the set too) */
    double waited = ms_since(t0);
    CHECK(waited >= 99);
    int next = dup(0); /* the lowest free number: the library's check left none of its own behind */
    CHECK(next == lowest);
    close(next);
    pthread_t w;
    CHECK_RC(pthread_create(&w, NULL, write_later, NULL), 0);
    CHECK(epoll_wait(e[4], out, 4, -1) == 1 && out[0].data.fd == e[3]);
    CHECK_RC(pthread_join(w, NULL), 0);
    printf("epoll sets nested 4 deep: timeout and event seen, errno kept\n");
    for (int i = 0; i < 5; i++) close(e[i]);
    close(nest_pipe[0]);
    close(nest_pipe[1]);
}

/* epoll_pwait2 (a timespec timeout, glibc 2.35) waits as epoll_pwait does:
 * with no timeout until another thread's write (which, on one hub, runs
 * only while the waiter is parked), a zero timeout at once, and bad
 * timeouts as the kernel says. */
static void *write_soon(void *fd) {
    sleep_ms(20);
    CHECK(write(*(int *)fd, "w", 1) == 1);
    return NULL;
}

static char c_probe;
static void pwait2(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = p[0]}, out[4];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e) == 0);
    struct timespec zero = {0, 0}, bad_nsec = {0, 1000000000}, ten_ms = {0, 10 * 1000000};
    int now = epoll_pwait2(ep, out, 4, &zero, NULL);
    int timed_out = epoll_pwait2(ep, out, 4, &ten_ms, NULL);
    CHECK_ERRNO(epoll_pwait2(ep, out, 4, &bad_nsec, NULL), EINVAL);
    /* (Under qemu-user, which has no process_vm_readv, the library reads
     * such a pointer itself: not tried there.) */
    struct iovec here = {&c_probe, 1}, there = {&c_probe, 1};
    if (syscall(SYS_process_vm_readv, getpid(), &here, 1, &there, 1, 0) == 1)
        CHECK_ERRNO(epoll_pwait2(ep, out, 4, (struct timespec *)1, NULL), EFAULT);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, write_soon, &p[1]), 0);
    sigset_t none;
    sigemptyset(&none);
    int woken = epoll_pwait2(ep, out, 4, NULL, &none);
    CHECK_RC(pthread_join(t, NULL), 0);
    char c;
    CHECK(read(p[0], &c, 1) == 1);
    CHECK_RC(pthread_create(&t, NULL, write_soon, &p[1]), 0);
    long by_syscall = syscall(SYS_epoll_pwait2, ep, out, 4, NULL, NULL, 8);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("epoll_pwait2: zero timeout %d, 10 ms timeout %d, no timeout woken by a write %d, by syscall %ld\n", now,
           timed_out, woken, by_syscall);
    CHECK(now == 0 && timed_out == 0 && woken == 1 && by_syscall == 1);
    close(ep);
    close(p[0]);
    close(p[1]);
}

int main(void) {
    program_start(60);
    /* Busy: 32 clients at once. */
    int n = CLIENTS;
    start_pairs(n);
    pthread_t loop, c[CLIENTS];
    stop_loop = 0;
    served = 0;
    CHECK_RC(pthread_create(&loop, NULL, event_loop, &n), 0);
    for (long i = 0; i < n; i++) CHECK_RC(pthread_create(&c[i], NULL, client, (void *)i), 0);
    for (int i = 0; i < n; i++) CHECK_RC(pthread_join(c[i], NULL), 0);
    stop_loop = 1;
    CHECK_RC(pthread_join(loop, NULL), 0);
    printf("busy loop: %ld replies, every one right\n", served);
    CHECK(served == (long)CLIENTS * ROUNDS);
    close_pairs(n);

    /* Idle: one client pausing 2 ms between requests; the loop's 50 ms
     * timeouts expire while nothing else happens (its last turns). */
    n = 1;
    start_pairs(n);
    stop_loop = 0;
    served = 0;
    CHECK_RC(pthread_create(&loop, NULL, event_loop, &n), 0);
    int fd = client_ends[0];
    for (uint32_t i = 0; i < 50; i++) {
        uint32_t back = 0;
        CHECK(write(fd, &i, sizeof i) == sizeof i);
        CHECK(read(fd, &back, sizeof back) == sizeof back);
        CHECK(back == i + 1);
        sleep_ms(2);
    }
    __atomic_store_n(&timeouts, 0, __ATOMIC_SEQ_CST);
    struct timespec t0 = ts_now(CLOCK_MONOTONIC);
    while (__atomic_load_n(&timeouts, __ATOMIC_SEQ_CST) < 2) sleep_ms(5);
    double waited = ms_since(t0);
    stop_loop = 1;
    CHECK_RC(pthread_join(loop, NULL), 0);
    printf("idle loop: %ld replies, timeouts expire\n", served);
    CHECK(served == 50);
    CHECK(waited >= 49); /* the second timeout from here waited 50 ms whole */
    close_pairs(n);

    /* Pending events are returned under a short timeout, at once. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = sv[0]}, out[4];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &e) == 0);
    CHECK(write(sv[1], "x", 1) == 1);
    int pending = 0;
    for (int i = 0; i < 100; i++) pending += epoll_wait(ep, out, 4, 1) == 1 && out[0].data.fd == sv[0];
    printf("pending events under a 1 ms timeout: %d of 100 turns\n", pending);
    CHECK(pending == 100);

    /* Bad input is the kernel's answer, at once, not after the timeout (or never). */
    struct timespec t1 = ts_now(CLOCK_MONOTONIC);
    CHECK_ERRNO(epoll_wait(ep, out, 0, 500), EINVAL);    /* maxevents 0 */
    CHECK_ERRNO(epoll_wait(sv[0], out, 4, 500), EINVAL); /* not an epoll fd */
    int gone = dup(ep);
    close(gone);
    CHECK_ERRNO(epoll_wait(gone, out, 4, -1), EBADF);     /* not open */
    CHECK_ERRNO(epoll_pwait(gone, out, 4, 500, NULL), EBADF);
    CHECK(ms_since(t1) < 400);
    printf("bad epoll input: EINVAL and EBADF at once\n");
    nested_sets();
    pwait2();
    close(ep);
    close(sv[0]);
    close(sv[1]);
    return program_end("own_event_loop");
}
