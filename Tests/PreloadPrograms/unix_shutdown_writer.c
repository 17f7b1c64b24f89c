/* unix_shutdown_writer.c — a thread blocked writing to an AF_UNIX socket
 * whose buffer is full, and another thread shuts that socket down for
 * writing: the kernel fails the write with EPIPE (after any bytes it had
 * sent), but epoll reports no event for it (unix_poll has no EPOLLOUT for a
 * send shutdown). Under `green run` the waiting fiber must try again, not
 * wait for ever (the watchdog's alarm ends a hung run). */
#include "check.h"
#include <sys/socket.h>

#define CHUNK (256 * 1024)

static char chunk[CHUNK];
static int writer_fd;
static size_t message_size; // a stream's chunk, or one datagram's
static volatile int started;
static long sent_total;
static int final_errno;

/* Sends until the kernel refuses: the writer blocks once the peer's buffer
 * is full (nobody reads it). */
static void *writer(void *arg) {
    (void)arg;
    started = 1;
    for (;;) {
        ssize_t n = send(writer_fd, chunk, message_size, MSG_NOSIGNAL);
        if (n < 0) {
            final_errno = errno;
            return NULL;
        }
        sent_total += n;
    }
}

static void one_case(const char *name, int type, int how, size_t size) {
    int sv[2];
    CHECK_RC(socketpair(AF_UNIX, type, 0, sv), 0);
    writer_fd = sv[0];
    message_size = size;
    started = 0;
    sent_total = 0;
    final_errno = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, writer, NULL), 0);
    while (!started) usleep(1000);
    usleep(200 * 1000); // long enough for the writer to fill the buffer and block
    CHECK_RC(shutdown(sv[0], how), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("%s: the writer's send failed with EPIPE: %s, after some bytes: %s\n", name,
           final_errno == EPIPE ? "yes" : strerror(final_errno), sent_total > 0 ? "yes" : "no");
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    program_start(30);
    one_case("stream, SHUT_WR", SOCK_STREAM, SHUT_WR, CHUNK);
    one_case("stream, SHUT_RDWR", SOCK_STREAM, SHUT_RDWR, CHUNK);
    one_case("seqpacket, SHUT_WR", SOCK_SEQPACKET, SHUT_WR, 1024);
    one_case("datagram pair, SHUT_WR", SOCK_DGRAM, SHUT_WR, 1024);
    return program_end("unix_shutdown_writer");
}
