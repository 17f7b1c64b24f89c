/* blocking_transfers.c — sendfile, splice, recvmmsg, sendmmsg and recvmsg's
 * MSG_WAITALL on sockets
 * the program made blocking. Under the preload those sockets are
 * non-blocking underneath, and these calls said EAGAIN where the blocking
 * call waits (a file server's sendfile stopped after the first 180 KiB; a
 * recvmmsg with nothing queued yet failed at once), and recvmsg with
 * MSG_WAITALL returned what was queued. Each must wait as it
 * does natively while another thread makes the socket ready, and return the
 * same counts. */
#include "check.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define FILE_BYTES (512 * 1024)

/* Tests/Aarch64/run sets it: qemu-user lacks some of the kernel's checks,
 * and aborts on a fork from a thread. */
static int under_qemu(void) { return getenv("TRANSFERS_UNDER_QEMU") != NULL; }

static unsigned char pattern(size_t i) { return (unsigned char)(i * 13 + (i >> 9)); }

/* A reader that takes `want` bytes slowly and checks them against pattern(). */
struct slow_reader {
    int fd;
    size_t want;
    size_t got;
    int in_order;
};

static void *read_slowly(void *arg) {
    struct slow_reader *r = arg;
    static unsigned char buf[4096];
    r->in_order = 1;
    sleep_ms(50); /* the sender fills the socket and has to wait */
    while (r->got < r->want) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(r->got + (size_t)i)) r->in_order = 0;
        r->got += (size_t)n;
        if ((r->got / 4096) % 16 == 0) sleep_ms(1);
    }
    return NULL;
}

static int pattern_file(void) {
    char path[] = "/tmp/green-transfers-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    static unsigned char data[FILE_BYTES];
    for (size_t i = 0; i < FILE_BYTES; i++) data[i] = pattern(i);
    CHECK(write(fd, data, FILE_BYTES) == FILE_BYTES);
    return fd;
}

static void sendfile_waits(int use_syscall) {
    int file = pattern_file();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct slow_reader r = {.fd = sv[0], .want = FILE_BYTES};
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, read_slowly, &r), 0);
    off_t offset = 0;
    ssize_t first = use_syscall ? syscall(SYS_sendfile, sv[1], file, &offset, (size_t)FILE_BYTES / 2)
                                : sendfile(sv[1], file, &offset, FILE_BYTES / 2);
    /* Without an offset the file's own position moves. */
    CHECK(lseek(file, FILE_BYTES / 2, SEEK_SET) == FILE_BYTES / 2);
    ssize_t second = sendfile(sv[1], file, NULL, FILE_BYTES);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("sendfile%s: %zd + %zd bytes (offset %lld, file position %lld), reader got %zu, in order %s\n",
           use_syscall ? " by syscall" : "", first, second, (long long)offset, (long long)lseek(file, 0, SEEK_CUR),
           r.got, r.in_order ? "yes" : "no");
    close(sv[0]);
    close(sv[1]);
    close(file);
}

/* Writes `n` bytes of pattern() after a pause, then closes (if asked). */
struct late_writer {
    int fd;
    size_t n;
};

static void *write_late(void *arg) {
    struct late_writer *w = arg;
    sleep_ms(50);
    unsigned char buf[64];
    for (size_t i = 0; i < w->n; i++) buf[i] = pattern(i);
    CHECK(write(w->fd, buf, w->n) == (ssize_t)w->n);
    return NULL;
}

static void splice_waits(void) {
    int sv[2], p[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    struct late_writer w = {.fd = sv[1], .n = 40};
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, write_late, &w), 0);
    ssize_t in = splice(sv[0], NULL, p[1], NULL, 1000, 0); /* nothing queued yet: waits */
    CHECK_RC(pthread_join(t, NULL), 0);
    ssize_t out = splice(p[0], NULL, sv[1], NULL, 1000, 0);
    unsigned char back[64];
    ssize_t got = read(sv[0], back, sizeof back);
    int same = got == 40;
    for (ssize_t i = 0; same && i < got; i++) same = back[i] == pattern((size_t)i);
    printf("splice: socket to pipe %zd, pipe to socket %zd, bytes back %zd, same %s\n", in, out, got,
           same ? "yes" : "no");
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

/* Sends `count` one-byte datagrams, numbered, `gap_ms` apart. */
struct datagram_sender {
    int fd;
    int count;
    long gap_ms;
};

static void *send_datagrams(void *arg) {
    struct datagram_sender *s = arg;
    for (int i = 0; i < s->count; i++) {
        sleep_ms(s->gap_ms);
        unsigned char b = (unsigned char)i;
        CHECK(send(s->fd, &b, 1, 0) == 1);
    }
    return NULL;
}

static int receive_batch(int fd, unsigned char *bytes, unsigned n, int flags, struct timespec *timeout, int use_syscall) {
    struct iovec iov[8];
    struct mmsghdr vec[8];
    memset(vec, 0, sizeof vec);
    for (unsigned i = 0; i < n; i++) {
        iov[i] = (struct iovec){&bytes[i], 1};
        vec[i].msg_hdr.msg_iov = &iov[i];
        vec[i].msg_hdr.msg_iovlen = 1;
    }
    return use_syscall ? (int)syscall(SYS_recvmmsg, fd, vec, n, flags, timeout) : recvmmsg(fd, vec, n, flags, timeout);
}

static void recvmmsg_waits(int use_syscall) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    pthread_t t;
    unsigned char got[8] = {0};

    /* No timeout: waits for all three, sent 30 ms apart. */
    struct datagram_sender s = {.fd = sv[1], .count = 3, .gap_ms = 30};
    CHECK_RC(pthread_create(&t, NULL, send_datagrams, &s), 0);
    int all = receive_batch(sv[0], got, 3, 0, NULL, use_syscall);
    CHECK_RC(pthread_join(t, NULL), 0);
    int in_order = all == 3 && got[0] == 0 && got[1] == 1 && got[2] == 2;

    /* MSG_WAITFORONE: waits for the first only. */
    s.count = 1;
    CHECK_RC(pthread_create(&t, NULL, send_datagrams, &s), 0);
    int one = receive_batch(sv[0], got, 3, MSG_WAITFORONE, NULL, use_syscall);
    CHECK_RC(pthread_join(t, NULL), 0);

    /* A timeout is checked after each datagram and the time left written
     * back: a zero one takes the first and stops. */
    struct timespec zero = {0, 0};
    CHECK_RC(pthread_create(&t, NULL, send_datagrams, &s), 0);
    int after_zero = receive_batch(sv[0], got, 3, 0, &zero, use_syscall);
    CHECK_RC(pthread_join(t, NULL), 0);

    struct timespec five = {5, 0};
    s.count = 2;
    CHECK_RC(pthread_create(&t, NULL, send_datagrams, &s), 0);
    int two = receive_batch(sv[0], got, 2, 0, &five, use_syscall);
    CHECK_RC(pthread_join(t, NULL), 0);
    int left_ok = five.tv_sec < 5 && (five.tv_sec > 0 || five.tv_nsec > 0) && five.tv_sec >= 4;

    printf("recvmmsg%s: all %d in order %s, wait for one %d, zero timeout %d (left %lld.%09ld), "
           "5 s timeout %d (time left written back %s)\n",
           use_syscall ? " by syscall" : "", all, in_order ? "yes" : "no", one, after_zero, (long long)zero.tv_sec,
           zero.tv_nsec, two, left_ok ? "yes" : "no");

    /* Bad arguments answer as the kernel does, before any wait (qemu-user's
     * recvmmsg ignores its timeout argument: not there). */
    struct timespec bad = {0, 2000000000L};
    if (!under_qemu()) {
        CHECK_ERRNO(receive_batch(sv[0], got, 1, 0, &bad, use_syscall), EINVAL);
        CHECK_ERRNO(receive_batch(sv[0], got, 1, 0, (struct timespec *)8, use_syscall), EFAULT);
    }
    /* SO_RCVTIMEO still ends the wait for the first. */
    struct timeval tv = {0, 100000};
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    CHECK_ERRNO(receive_batch(sv[0], got, 1, 0, NULL, use_syscall), EAGAIN);
    close(sv[0]);
    close(sv[1]);
}

#define MESSAGES 3
#define MESSAGE_BYTES (96 * 1024)

static void sendmmsg_waits_stream(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    static unsigned char data[MESSAGES * MESSAGE_BYTES];
    for (size_t i = 0; i < sizeof data; i++) data[i] = pattern(i);
    struct iovec iov[MESSAGES][2];
    struct mmsghdr vec[MESSAGES];
    memset(vec, 0, sizeof vec);
    for (int i = 0; i < MESSAGES; i++) {
        unsigned char *m = data + (size_t)i * MESSAGE_BYTES;
        iov[i][0] = (struct iovec){m, 1000};
        iov[i][1] = (struct iovec){m + 1000, MESSAGE_BYTES - 1000};
        vec[i].msg_hdr.msg_iov = iov[i];
        vec[i].msg_hdr.msg_iovlen = 2;
    }
    struct slow_reader r = {.fd = sv[0], .want = sizeof data};
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, read_slowly, &r), 0);
    int sent = sendmmsg(sv[1], vec, MESSAGES, 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    int whole = 1;
    for (int i = 0; i < MESSAGES; i++) whole &= vec[i].msg_len == MESSAGE_BYTES;
    printf("sendmmsg, stream: %d of %d messages, each whole %s, reader got %zu, in order %s\n", sent, MESSAGES,
           whole ? "yes" : "no", r.got, r.in_order ? "yes" : "no");
    close(sv[0]);
    close(sv[1]);
}

#define DATAGRAMS 1000 /* more than an unread socket takes (checked), fewer than sendmmsg's 1024 */

static void *receive_datagrams_slowly(void *arg) {
    int fd = *(int *)arg;
    sleep_ms(50); /* the queue fills and the sender has to wait */
    intptr_t in_order = 0;
    for (int i = 0; i < DATAGRAMS; i++) {
        int v = -1;
        if (recv(fd, &v, sizeof v, 0) != sizeof v) break;
        if (v == i) in_order++;
    }
    return (void *)in_order;
}

static void sendmmsg_waits_datagrams(void) {
    static int values[DATAGRAMS];
    static struct iovec iov[DATAGRAMS];
    static struct mmsghdr vec[DATAGRAMS];
    memset(vec, 0, sizeof vec);
    for (int i = 0; i < DATAGRAMS; i++) {
        values[i] = i;
        iov[i] = (struct iovec){&values[i], sizeof values[i]};
        vec[i].msg_hdr.msg_iov = &iov[i];
        vec[i].msg_hdr.msg_iovlen = 1;
    }
    /* The call has to wait: a socket nobody reads takes fewer. */
    int probe[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, probe) == 0);
    int fit = sendmmsg(probe[1], vec, DATAGRAMS, MSG_DONTWAIT);
    close(probe[0]);
    close(probe[1]);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, receive_datagrams_slowly, &sv[0]), 0);
    int sent = sendmmsg(sv[1], vec, DATAGRAMS, 0);
    void *in_order = NULL;
    CHECK_RC(pthread_join(t, &in_order), 0);
    printf("sendmmsg, datagrams: %d of %d sent (an unread socket takes fewer: %s), %ld received in order\n", sent,
           DATAGRAMS, fit > 0 && fit < DATAGRAMS ? "yes" : "no", (long)(intptr_t)in_order);
    close(sv[0]);
    close(sv[1]);
}

/* Writes 4 bytes of pattern() 4 times, 20 ms apart. */
static void *write_in_pieces(void *arg) {
    int fd = *(int *)arg;
    for (size_t i = 0; i < 16; i += 4) {
        sleep_ms(20);
        unsigned char b[4] = {pattern(i), pattern(i + 1), pattern(i + 2), pattern(i + 3)};
        CHECK(write(fd, b, 4) == 4);
    }
    return NULL;
}

/* recvmsg with MSG_WAITALL on a stream fills every buffer (it returned the
 * first piece alone), and a socket timeout ends it with the bytes so far. */
static void recvmsg_waits_for_all(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, write_in_pieces, &sv[1]), 0);
    unsigned char buf[16];
    struct iovec iov[2] = {{buf, 6}, {buf + 6, 10}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t all = recvmsg(sv[0], &m, MSG_WAITALL);
    CHECK_RC(pthread_join(t, NULL), 0);
    int in_order = all == 16;
    for (size_t i = 0; in_order && i < 16; i++) in_order = buf[i] == pattern(i);
    CHECK(iov[0].iov_len == 6 && iov[1].iov_len == 10 && iov[1].iov_base == buf + 6); /* the program's array untouched */

    struct timeval tv = {0, 100000};
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    CHECK(write(sv[1], "abc", 3) == 3);
    ssize_t timed = recvmsg(sv[0], &m, MSG_WAITALL);
    CHECK(all == 16 && in_order);
    printf("recvmsg MSG_WAITALL: %zd of 16 bytes in two buffers, in order %s; with a 100 ms timeout %zd\n", all,
           in_order ? "yes" : "no", timed);
    close(sv[0]);
    close(sv[1]);
}

static const char *errno_name(ssize_t r) {
    if (r >= 0) return "none";
    switch (errno) {
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EAGAIN: return "EAGAIN";
    default: return "other";
    }
}

static void *drain_pipe_late(void *arg) {
    int fd = *(int *)arg;
    sleep_ms(50);
    static char buf[70000];
    size_t got = 0;
    ssize_t n;
    while (got < 65536 + 5 && (n = read(fd, buf, sizeof buf)) > 0) got += (size_t)n;
    return NULL;
}

/* Arguments the kernel refuses at once, and a pipe side that is not ready. */
static void edges(void) {
    int sv[2], p[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    ssize_t wrong_in = splice(p[1], NULL, sv[1], NULL, 10, 0);
    const char *wrong_in_errno = errno_name(wrong_in);
    ssize_t wrong_out = splice(sv[0], NULL, p[0], NULL, 10, 0);
    const char *wrong_out_errno = errno_name(wrong_out);
    ssize_t nothing = splice(p[0], NULL, sv[1], NULL, 0, 0);
    int file = pattern_file();
    ssize_t huge = sendfile(sv[1], file, NULL, (size_t)-1); /* from a file, which could send it all */
    const char *huge_errno = errno_name(huge);

    /* A read-only timeout: the kernel's write of the time left says EFAULT. */
    int dg[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) == 0);
    struct timespec *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ro != MAP_FAILED);
    ro->tv_sec = 5;
    CHECK(mprotect(ro, 4096, PROT_READ) == 0);
    struct datagram_sender s = {.fd = dg[1], .count = 1, .gap_ms = 30};
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, send_datagrams, &s), 0);
    unsigned char got[2];
    ssize_t ro_r = receive_batch(dg[0], got, 1, 0, ro, 0);
    const char *ro_errno = errno_name(ro_r);
    CHECK_RC(pthread_join(t, NULL), 0);

    /* sendfile from a socket into a full pipe: waits until a reader drains it. */
    static char fill[65536];
    CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
    size_t filled = 0;
    ssize_t n;
    while ((n = write(p[1], fill, sizeof fill)) > 0) filled += (size_t)n;
    CHECK(fcntl(p[1], F_SETFL, 0) == 0);
    CHECK(write(sv[0], "hello", 5) == 5);
    CHECK_RC(pthread_create(&t, NULL, drain_pipe_late, &p[0]), 0);
    ssize_t into_pipe = sendfile(p[1], sv[1], NULL, 100); /* 5 queued: a pipe takes what one call moves */
    CHECK_RC(pthread_join(t, NULL), 0);

    printf("edges: splice from a write end %zd %s, into a read end %zd %s, of 0 bytes %zd; sendfile of SIZE_MAX "
           "%zd %s; recvmmsg with a read-only timeout %zd %s; sendfile from a socket into a full pipe %zd\n",
           wrong_in, wrong_in_errno, wrong_out, wrong_out_errno, nothing, huge, huge_errno, ro_r, ro_errno, into_pipe);
    munmap(ro, 4096);
    close(file);
    close(dg[0]);
    close(dg[1]);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

static int sigpipes;
static void count_sigpipe(int sig) {
    (void)sig;
    __atomic_add_fetch(&sigpipes, 1, __ATOMIC_SEQ_CST);
}

/* Reads `n` bytes, then closes its end. */
struct closing_reader {
    int fd;
    size_t n;
};

static void *read_then_close(void *arg) {
    struct closing_reader *r = arg;
    static char buf[4096];
    size_t got = 0;
    sleep_ms(30);
    while (got < r->n) {
        ssize_t k = read(r->fd, buf, r->n - got < sizeof buf ? r->n - got : sizeof buf);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(r->fd);
    return NULL;
}

/* Closes its end 200 ms later (the writer is blocked by then), unread. */
static void *close_late(void *arg) {
    struct closing_reader *r = arg;
    sleep_ms(200);
    close(r->fd);
    return NULL;
}

/* "abcd", then "efgh" with an fd passed along. */
static void *write_then_pass_fd(void *arg) {
    int fd = *(int *)arg;
    CHECK(write(fd, "abcd", 4) == 4);
    sleep_ms(30);
    int passed = open("/dev/null", O_RDONLY);
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec v = {"efgh", 4};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed, sizeof passed);
    CHECK(sendmsg(fd, &m, 0) == 4);
    close(passed);
    return NULL;
}

/* Writes one byte every 150 ms, 8 in all. */
static void *write_slowly(void *arg) {
    int fd = *(int *)arg;
    for (int i = 0; i < 8; i++) {
        sleep_ms(150);
        if (write(fd, "x", 1) != 1) break;
    }
    return NULL;
}

/* Where a blocking call stops early, and what it must not do meanwhile. */
static void more_edges(void) {
    /* splice from a pipe into a socket with little room: a blocking socket
     * takes all the pipe holds. */
    int sv[2], p[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    int small = 4096;
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    static unsigned char data[60000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = pattern(i);
    CHECK(write(p[1], data, sizeof data) == (ssize_t)sizeof data);
    struct slow_reader r = {.fd = sv[0], .want = sizeof data};
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, read_slowly, &r), 0);
    ssize_t spliced = splice(p[0], NULL, sv[1], NULL, sizeof data, 0);
    if (spliced != (ssize_t)sizeof data) shutdown(sv[1], SHUT_WR); /* a failed check, not a reader waiting for ever */
    CHECK_RC(pthread_join(t, NULL), 0);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);

    /* MSG_WAITALL reads past "abcd" into the message that passes an fd,
     * and the fd arrives. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_RC(pthread_create(&t, NULL, write_then_pass_fd, &sv[1]), 0);
    char buf[8];
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec v = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t all = recvmsg(sv[0], &m, MSG_WAITALL);
    CHECK_RC(pthread_join(t, NULL), 0);
    int fd_open = 0;
    struct cmsghdr *c = m.msg_controllen ? CMSG_FIRSTHDR(&m) : NULL;
    if (c && c->cmsg_type == SCM_RIGHTS) {
        int passed;
        memcpy(&passed, CMSG_DATA(c), sizeof passed);
        fd_open = fcntl(passed, F_GETFD) >= 0;
        close(passed);
    }
    close(sv[0]);
    close(sv[1]);

    /* One SO_RCVTIMEO for the whole MSG_WAITALL call, not one per piece. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct timeval tv = {0, 400000};
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    CHECK_RC(pthread_create(&t, NULL, write_slowly, &sv[1]), 0);
    ssize_t timed = recvmsg(sv[0], &m, MSG_WAITALL);
    m.msg_controllen = 0;
    CHECK_RC(pthread_join(t, NULL), 0);
    close(sv[0]);
    close(sv[1]);

    /* A blocking send that sent part and then met a closed peer returns the
     * count, and raises no SIGPIPE (the kernel raises it for none sent). */
    struct sigaction sa = {.sa_handler = count_sigpipe}, old;
    sigaction(SIGPIPE, &sa, &old);
    static unsigned char big[4 << 20];
    ssize_t partial_write = -1;
    int partial_mmsg = -1;
    for (int round = 0; round < 2; round++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        struct closing_reader cr = {.fd = sv[0], .n = 65536};
        CHECK_RC(pthread_create(&t, NULL, read_then_close, &cr), 0);
        if (round == 0) {
            partial_write = write(sv[1], big, sizeof big);
        } else {
            struct iovec bv = {big, sizeof big};
            struct mmsghdr mm = {.msg_hdr = {.msg_iov = &bv, .msg_iovlen = 1}};
            partial_mmsg = sendmmsg(sv[1], &mm, 1, 0);
            CHECK(mm.msg_len > 0 && mm.msg_len < sizeof big);
        }
        CHECK_RC(pthread_join(t, NULL), 0);
        close(sv[1]);
    }
    /* A write waiting on a full socket whose peer then closes with bytes
     * unread: ECONNRESET, the error that woke it, and no SIGPIPE. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    while (send(sv[1], big, 4096, MSG_DONTWAIT) > 0) {}
    struct closing_reader late = {.fd = sv[0], .n = 0};
    CHECK_RC(pthread_create(&t, NULL, close_late, &late), 0);
    ssize_t reset = write(sv[1], big, 100);
    int reset_errno = errno;
    CHECK_RC(pthread_join(t, NULL), 0);
    close(sv[1]);
    sigaction(SIGPIPE, &old, NULL);

    CHECK(spliced == (ssize_t)sizeof data && all == 8 && fd_open && timed < 8 && reset < 0 && reset_errno == ECONNRESET);
    printf("more edges: splice from a pipe into a socket with little room %zd of %zu, in order %s; MSG_WAITALL "
           "past a passed fd %zd, fd open %s; MSG_WAITALL within one 400 ms socket timeout %s; after a partial "
           "send to a closed peer: write partial %s, sendmmsg %d, SIGPIPEs %d\n",
           spliced, sizeof data, r.in_order ? "yes" : "no", all, fd_open ? "yes" : "no", timed < 8 ? "yes" : "no",
           partial_write > 0 && partial_write < (ssize_t)sizeof big ? "yes" : "no", partial_mmsg,
           __atomic_load_n(&sigpipes, __ATOMIC_SEQ_CST));
    printf("a write on a full socket whose peer closed: %zd %s\n", reset,
           reset < 0 && reset_errno == ECONNRESET ? "ECONNRESET" : "other");
    __atomic_store_n(&sigpipes, 0, __ATOMIC_SEQ_CST);
}

/* Sockets made before a fork: the shim's side then drives them per call
 * (another process may hold them), and their kernel flag is still the
 * shim's non-blocking one. */
static void after_a_fork(void) {
    int stream[2], dgram[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, stream) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) == 0);
    pid_t child = fork();
    if (child == 0) _exit(0);
    CHECK(child > 0 && waitpid(child, NULL, 0) == child);

    int file = pattern_file();
    struct slow_reader r = {.fd = stream[0], .want = FILE_BYTES};
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, read_slowly, &r), 0);
    off_t offset = 0;
    ssize_t sent = sendfile(stream[1], file, &offset, FILE_BYTES);
    if (sent != FILE_BYTES) shutdown(stream[1], SHUT_WR); /* a failed check, not a reader waiting for ever */
    CHECK_RC(pthread_join(t, NULL), 0);

    struct datagram_sender s = {.fd = dgram[1], .count = 3, .gap_ms = 30};
    unsigned char got[8] = {0};
    CHECK_RC(pthread_create(&t, NULL, send_datagrams, &s), 0);
    int all = receive_batch(dgram[0], got, 3, 0, NULL, 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("after a fork: sendfile %zd, reader got %zu in order %s; recvmmsg %d\n", sent, r.got,
           r.in_order ? "yes" : "no", all);
    CHECK(sent == FILE_BYTES && r.got == FILE_BYTES && r.in_order && all == 3);
    close(file);
    for (int i = 0; i < 2; i++) {
        close(stream[i]);
        close(dgram[i]);
    }
}

static void *all_checks(void *unused) {
    (void)unused;
    sendfile_waits(0);
    sendfile_waits(1);
    splice_waits();
    recvmmsg_waits(0);
    recvmmsg_waits(1);
    sendmmsg_waits_stream();
    sendmmsg_waits_datagrams();
    recvmsg_waits_for_all();
    edges();
    more_edges();
    if (!under_qemu()) after_a_fork();
    return NULL;
}

int main(void) {
    program_start(60);
    /* On a thread of the program's own, and on the main thread. */
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, all_checks, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    all_checks(NULL);
    return program_end("blocking_transfers");
}
