/* unix_shutdown_writer.c — a thread blocked writing to an AF_UNIX socket
 * whose buffer is full, and another thread shuts that socket down for
 * writing: the kernel fails the write with EPIPE (after any bytes it had
 * sent), but epoll reports no event for it (unix_poll has no EPOLLOUT for a
 * send shutdown). Under `green run` the waiting fiber must try again, not
 * wait for ever (the watchdog's alarm ends a hung run).
 *
 * And the other way: a shutdown that a signal handler makes is acted on by
 * the hub later, by when the number may name another file (here a full
 * pipe's write end) whose writer must go on waiting, not be told to write
 * (which would block the hub: a ticker thread would stop). */
#include "check.h"
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
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
    // Until the writer has sent bytes, then a while for it to fill the
    // buffer and block (if it has not, its next send fails all the same).
    int queued = 0;
    while (ioctl(sv[0], SIOCOUTQ, &queued) == 0 && queued == 0) usleep(1000);
    usleep(200 * 1000);
    CHECK_RC(shutdown(sv[0], how), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("%s: the writer's send failed with EPIPE: %s, after some bytes: %s\n", name,
           final_errno == EPIPE ? "yes" : strerror(final_errno), sent_total > 0 ? "yes" : "no");
    close(sv[0]);
    close(sv[1]);
}

static int shut_fd;
static volatile int ticks, stop_ticking;
static void shut_down_for_writing(int sig) { (void)sig; shutdown(shut_fd, SHUT_WR); }
static void on_alarm(int sig) { (void)sig; }
static void *ticker(void *arg) {
    (void)arg;
    while (!stop_ticking) {
        usleep(50 * 1000);
        ticks++;
    }
    return NULL;
}

static void number_reused_after_shutdown(void) {
    pthread_t t;
    stop_ticking = 0;
    CHECK_RC(pthread_create(&t, NULL, ticker, NULL), 0);
    int hole = dup(1); // freed below, so that the pipe's read end takes it
    int sv[2];
    CHECK_RC(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    shut_fd = sv[0];
    struct sigaction usr1 = {.sa_handler = shut_down_for_writing}, alrm = {.sa_handler = on_alarm}, old_alrm;
    CHECK_RC(sigaction(SIGUSR1, &usr1, NULL), 0);
    CHECK_RC(raise(SIGUSR1), 0);
    close(hole);
    close(sv[0]);
    int p[2];
    CHECK_RC(pipe(p), 0);
    CHECK(p[1] == sv[0]); // the write end took the socket's number
    int fl = fcntl(p[1], F_GETFL);
    CHECK_RC(fcntl(p[1], F_SETFL, fl | O_NONBLOCK), 0);
    while (write(p[1], chunk, 4096) > 0) {}
    CHECK_RC(fcntl(p[1], F_SETFL, fl), 0);
    // A one-second wait to write, ended by the alarm's handler: meanwhile
    // the ticker runs, unless the hub was told to write and blocked.
    CHECK_RC(sigaction(SIGALRM, &alrm, &old_alrm), 0);
    int before = ticks;
    alarm(1);
    ssize_t r = write(p[1], "x", 1);
    int e = errno;
    int during = ticks - before;
    CHECK_RC(sigaction(SIGALRM, &old_alrm, NULL), 0);
    alarm(30); // the watchdog again
    stop_ticking = 1;
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("a full pipe on the number of a socket shut down in a handler: its write waits (%s), "
           "the other threads run: %s\n",
           r < 0 && e == EINTR ? "ended by the alarm" : "returned", during >= 2 ? "yes" : "no");
    close(p[0]);
    close(p[1]);
    close(sv[1]);
}

int main(void) {
    program_start(30);
    one_case("stream, SHUT_WR", SOCK_STREAM, SHUT_WR, CHUNK);
    one_case("stream, SHUT_RDWR", SOCK_STREAM, SHUT_RDWR, CHUNK);
    one_case("seqpacket, SHUT_WR", SOCK_SEQPACKET, SHUT_WR, 1024);
    one_case("datagram pair, SHUT_WR", SOCK_DGRAM, SHUT_WR, 1024);
    number_reused_after_shutdown();
    return program_end("unix_shutdown_writer");
}
