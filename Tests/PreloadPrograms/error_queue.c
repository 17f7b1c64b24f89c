/* error_queue.c — recvmsg(MSG_ERRQUEUE) never waits: with nothing queued it
 * fails with EAGAIN at once, whether the socket is idle, readable or hung
 * up. socat reads the error queue after a refused connect (a hostname whose
 * first address refuses); waiting for readiness and retrying spun for ever. */
#include "check.h"
#include <netinet/in.h>
#include <sys/socket.h>

static void *errqueue_checks(void *unused) {
    (void)unused;
    char buf[64], control[256];
    struct iovec v = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};

    int udp = socket(AF_INET, SOCK_DGRAM, 0); /* idle: never readable */
    CHECK_ERRNO((int)recvmsg(udp, &m, MSG_ERRQUEUE), EAGAIN);
    close(udp);

    /* A TCP connection whose peer closed: always readable (EOF). */
    int lst = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(lst, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(lst, (struct sockaddr *)&a, &len) == 0);
    CHECK(listen(lst, 4) == 0);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(client, (struct sockaddr *)&a, sizeof a) == 0);
    int server = accept(lst, NULL, NULL);
    close(server);
    CHECK(read(client, buf, sizeof buf) == 0);
    m.msg_controllen = sizeof control;
    CHECK_ERRNO((int)recvmsg(client, &m, MSG_ERRQUEUE | MSG_TRUNC), EAGAIN);
    close(client);

    /* A refused connect, then the error queue, as socat does. */
    close(lst); /* the port is free again: connecting is refused */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_ERRNO(connect(c, (struct sockaddr *)&a, sizeof a), ECONNREFUSED);
    m.msg_controllen = sizeof control;
    CHECK_ERRNO((int)recvmsg(c, &m, MSG_ERRQUEUE | MSG_TRUNC), EAGAIN);
    close(c);
    return NULL;
}

int main(void) {
    program_start(20);
    errqueue_checks(NULL);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, errqueue_checks, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("error queue: EAGAIN at once when idle, hung up, and after a refused connect\n");
    return program_end("error_queue");
}
