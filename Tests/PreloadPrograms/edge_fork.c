/* edge_fork.c — a connection's blocking reads across fork().
 *
 * Under green run a TCP socket's reads wait on the hub's own edge-triggered
 * epoll set, where the socket stays registered between waits. A fork child
 * inherits that set: one kernel object with the parent's, which both hubs
 * would poll. The child must wait elsewhere (its hub lets go of the
 * parent's set before it polls: the child's first waits go through libev,
 * its later ones through a set of its own), and the parent's waits go on in
 * its set as before. */
#include "check.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* A connected pair of TCP sockets on loopback: *a accepted, *b connected. */
static void tcp_pair(int *a, int *b) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CHECK(bind(listener, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(listener, 1) == 0);
    CHECK(getsockname(listener, (struct sockaddr *)&addr, &len) == 0);
    *b = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(*b, (struct sockaddr *)&addr, sizeof addr) == 0);
    *a = accept(listener, NULL, NULL);
    CHECK(*a >= 0);
    close(listener);
}

struct later { int fd; const char *bytes; useconds_t after; };

/* After a pause, write the bytes (fd >= 0), or end the process (fd < 0). */
static void *later(void *arg) {
    struct later *l = arg;
    usleep(l->after);
    if (l->fd < 0) _exit(0);
    CHECK(write(l->fd, l->bytes, strlen(l->bytes)) == (ssize_t)strlen(l->bytes));
    return NULL;
}

/* A child's own watchdog: its reads must not take 5 s. */
static void *child_watchdog(void *unused) {
    (void)unused;
    sleep(5);
    _exit(7);
}

/* The reads, the forks and the children's reads, on a thread of their own:
 * green run makes it a fiber (the main thread may not be one). */
static void *scenario(void *unused) {
    (void)unused;
    int a, peer;
    tcp_pair(&a, &peer);

    /* The parent waits on `a` (nothing there yet), then reads 3 of 64
     * bytes: a short read, so its next read waits before it reads. */
    pthread_t t;
    struct later one = {peer, "one", 50000};
    CHECK(pthread_create(&t, NULL, later, &one) == 0);
    CHECK(read_is(a, "one"));
    pthread_join(t, NULL);

    /* A child makes a connection of its own and reads it ten times, the
     * bytes written by another of its threads. Its hub must not wait on the
     * set it inherited: the parent's hub, blocked on the same set, would
     * take the child's events (and drop them, not its tags) and the child's
     * read would wait for ever. (The inherited socket itself is no longer
     * one the shim made non-blocking: its file is the child's too.) */
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        pthread_t k;
        if (pthread_create(&k, NULL, child_watchdog, NULL) != 0) _exit(3);
        int c, cpeer;
        tcp_pair(&c, &cpeer);
        for (int i = 0; i < 10; i++) {
            struct later bytes = {cpeer, "c", 5000};
            pthread_t w;
            if (pthread_create(&w, NULL, later, &bytes) != 0) _exit(3);
            if (!read_is(c, "c")) _exit(5);
            pthread_join(w, NULL);
        }
        _exit(check_failures ? 6 : 0);
    }
    int st = 0;
    while (waitpid(kid, &st, 0) < 0 && errno == EINTR) {}
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* The parent's waits go on in its set: a new connection's, and the
     * inherited one's (which now waits as a shared file does). */
    int b, bpeer;
    tcp_pair(&b, &bpeer);
    for (int i = 0; i < 3; i++) {
        struct later bytes = {bpeer, "b", 5000};
        CHECK(pthread_create(&t, NULL, later, &bytes) == 0);
        CHECK(read_is(b, "b"));
        pthread_join(t, NULL);
    }
    struct later two = {peer, "two", 5000};
    CHECK(pthread_create(&t, NULL, later, &two) == 0);
    CHECK(read_is(a, "two"));
    pthread_join(t, NULL);
    printf("a fork child's reads, and then its parent's, see their bytes\n");
    close(b);
    close(bpeer);
    close(a);
    close(peer);
    return NULL;
}

int main(void) {
    program_start(60);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, scenario, NULL) == 0);
    pthread_join(t, NULL);
    return program_end("edge_fork");
}
