/* edge_states.c — a TCP socket whose state comes and goes while its reader
 * waits. Under green run a connection's reads wait on the hub's own
 * edge-triggered epoll set, which keeps what it was told of a socket
 * between waits: an error and the end of a connection must not stay "ready"
 * once over, or the reader's call says EAGAIN, its wait returns at once,
 * and it spins, never letting the other threads of its hub run (the one
 * that would write to it included: the watchdog ends the program).
 *
 *  - an error-queue entry (a MSG_ZEROCOPY send's completion), read and
 *    gone, while a reader waits for bytes that come later;
 *  - a socket disconnected (connect with AF_UNSPEC: its read returns no
 *    bytes) and connected again, whose reader waits for the new
 *    connection's bytes. */
#include "check.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif

static int listener, server_end, client;
static int reconnected[2]; /* a pipe: the reconnecter says "connected anew" */
static struct sockaddr_in addr;

static void *error_queue_writer(void *unused) {
    (void)unused;
    usleep(50000); /* the reader waits */
    int one = 1;
    CHECK(setsockopt(client, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) == 0);
    CHECK(send(client, "z", 1, MSG_ZEROCOPY) == 1);
    usleep(50000);
    char control[128];
    struct msghdr m = {.msg_control = control, .msg_controllen = sizeof control};
    CHECK(recvmsg(client, &m, MSG_ERRQUEUE | MSG_DONTWAIT) >= 0); /* the completion, read and gone */
    usleep(100000);
    CHECK(write(server_end, "hello", 5) == 5);
    usleep(100000);
    CHECK(write(server_end, "again", 5) == 5);
    return NULL;
}

static void *reconnecter(void *unused) {
    (void)unused;
    usleep(50000); /* the reader waits */
    struct sockaddr none = {.sa_family = AF_UNSPEC};
    CHECK(connect(client, &none, sizeof none) == 0); /* its read returns 0: end of stream */
    usleep(50000);
    CHECK(connect(client, (struct sockaddr *)&addr, sizeof addr) == 0);
    int fresh = accept(listener, NULL, NULL);
    CHECK(fresh >= 0);
    CHECK(write(reconnected[1], "r", 1) == 1);
    usleep(200000); /* the reader waits on the new connection */
    CHECK(write(fresh, "fresh", 5) == 5);
    usleep(50000);
    close(fresh);
    return NULL;
}

/* On a thread of its own: green run makes it a fiber. */
static void *scenario(void *unused) {
    (void)unused;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CHECK(bind(listener, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(listener, 4) == 0);
    CHECK(getsockname(listener, (struct sockaddr *)&addr, &len) == 0);
    client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(client, (struct sockaddr *)&addr, sizeof addr) == 0);
    server_end = accept(listener, NULL, NULL);
    CHECK(server_end >= 0);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, error_queue_writer, NULL) == 0);
    CHECK(read_is(client, "hello")); /* EAGAIN, then waits through the error */
    CHECK(read_is(client, "again")); /* a short read before: waits first */
    pthread_join(t, NULL);
    printf("a reader waits on through an error-queue entry read and gone\n");

    CHECK(pipe(reconnected) == 0);
    CHECK(pthread_create(&t, NULL, reconnecter, NULL) == 0);
    char c;
    CHECK(read(client, &c, 1) <= 0);          /* disconnected: no bytes (end of stream or a reset) */
    CHECK(read(reconnected[0], &c, 1) == 1);  /* connected anew */
    CHECK(read_is(client, "fresh"));          /* waits for the new connection's bytes */
    pthread_join(t, NULL);
    printf("a reader waits on a socket connected anew after its end of stream\n");
    close(reconnected[0]);
    close(reconnected[1]);
    close(client);
    close(server_end);
    close(listener);
    return NULL;
}

int main(void) {
    program_start(30);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, scenario, NULL) == 0);
    pthread_join(t, NULL);
    return program_end("edge_states");
}
