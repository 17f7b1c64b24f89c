/* echo_server.c — a classic thread-per-connection TCP echo server in plain
 * POSIX C. It knows nothing of Green: natively every connection costs an OS
 * thread; under `green run` (LD_PRELOAD=libgreen-preload.so) every thread is
 * a fiber, over a hub (an OS thread) per CPU, and the same binary serves
 * thousands of clients.
 *
 *   cc -O2 -pthread -o echo_server echo_server.c
 *   ./echo_server [PORT]        (PORT 0 or absent: the kernel picks one)
 *
 * It listens on 127.0.0.1, prints "listening on PORT" on stdout, and echoes
 * every byte each client sends until the client closes its side. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    BACKLOG = 4096,                 /* pending connections the kernel may queue */
    THREAD_STACK = 256 * 1024,      /* an echo loop needs little stack */
    BUFFER_SIZE = 16 * 1024,
};

/* Exit with a message naming the call that failed (errno style). */
static void die(const char *what) {
    fprintf(stderr, "echo_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Write all `len` bytes, however many calls it takes. Returns 0, or -1 when
 * the peer went away. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One connection's thread: blocking read, blocking write, until EOF. */
static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[BUFFER_SIZE];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;                       /* EOF (0) or an error such as ECONNRESET */
        if (write_all(fd, buf, (size_t)n) < 0) break;
    }
    close(fd);
    return NULL;
}

/* Let the process keep as many descriptors open as its hard limit allows:
 * one per connection. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("echo_server: setrlimit(RLIMIT_NOFILE)");
    }
}

/* A TCP listener on 127.0.0.1:port; returns the fd and the bound port. */
static int listen_on(uint16_t port, uint16_t *bound) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
    if (listen(fd, BACKLOG) != 0) die("listen");
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) die("getsockname");
    *bound = ntohs(addr.sin_port);
    return fd;
}

int main(int argc, char **argv) {
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: echo_server [port]\n");
        return 2;
    }
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);   /* a client that vanishes makes write fail with EPIPE instead */

    uint16_t bound = 0;
    int listener = listen_on((uint16_t)port, &bound);
    printf("listening on %u\n", bound);
    fflush(stdout);

    /* Every connection thread is detached (nobody joins it) and gets an
     * explicit, modest stack. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);

    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) {   /* out of descriptors: wait a little */
                perror("echo_server: accept");
                usleep(100 * 1000);
                continue;
            }
            die("accept");
        }
        pthread_t thread;
        int rc = pthread_create(&thread, &attr, serve, (void *)(intptr_t)fd);
        if (rc != 0) {   /* no thread for this one: refuse it, keep serving the others */
            fprintf(stderr, "echo_server: pthread_create: %s\n", strerror(rc));
            close(fd);
        }
    }
}
