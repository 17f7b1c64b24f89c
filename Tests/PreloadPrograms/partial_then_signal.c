/* partial_then_signal.c — a blocking write that sent part of its bytes, or a
 * MSG_WAITALL read that got part, returns that count when a signal handler
 * runs while it waits, even one installed with SA_RESTART: the kernel's call
 * restarts only when it has moved nothing (signal(7): "a partial success").
 * A thread signals the waiting one again and again until its call returns;
 * a call that went on waiting is freed by the peer going away and printed
 * as "returned on a signal: no". */
#include "check.h"
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define BIG (1 << 20)

enum kind { WRITE_SOCKET, WRITEV_SOCKET, WRITE_PIPE, RECV_WAITALL, RECVMSG_WAITALL, SENDFILE_SOCKET, RECVMMSG,
            SENDMMSG, SENDMMSG_STREAM, KINDS };
static const char *names[KINDS] = {"write to a socket nobody reads", "writev to a socket nobody reads",
                                   "write to a pipe nobody reads", "recv MSG_WAITALL with 10 bytes queued",
                                   "recvmsg MSG_WAITALL with 10 bytes queued", "sendfile to a socket nobody reads",
                                   "recvmmsg of 8 with 2 datagrams queued", "sendmmsg of 1000 datagrams nobody reads",
                                   "sendmmsg of one long message to a stream nobody reads"};
static int file_fd; /* BIG bytes, for sendfile */
static struct mmsghdr batch[1000];
static struct iovec batch_iov[1000];

static volatile sig_atomic_t handled;
static void on_usr1(int sig) { (void)sig; handled++; }

static char big[BIG];
static int fds[2];          // [0] the call's end, [1] the peer's
static enum kind kind;
static volatile int returned;  // the call returned
static ssize_t result;

static void *call(void *arg) {
    (void)arg;
    switch (kind) {
    case WRITE_SOCKET:
    case WRITE_PIPE: result = write(fds[0], big, BIG); break;
    case WRITEV_SOCKET: {
        struct iovec two[2] = {{big, BIG / 2}, {big + BIG / 2, BIG / 2}};
        result = writev(fds[0], two, 2);
        break;
    }
    case RECV_WAITALL: result = recv(fds[0], big, 65536, MSG_WAITALL); break;
    case RECVMSG_WAITALL: {
        struct iovec one = {big, 65536};
        struct msghdr m = {.msg_iov = &one, .msg_iovlen = 1};
        result = recvmsg(fds[0], &m, MSG_WAITALL);
        break;
    }
    case SENDFILE_SOCKET: {
        off_t at = 0;
        result = sendfile(fds[0], file_fd, &at, BIG);
        break;
    }
    case RECVMMSG:
    case SENDMMSG: {
        unsigned n = kind == RECVMMSG ? 8 : 1000;
        for (unsigned i = 0; i < n; i++) {
            batch_iov[i] = (struct iovec){big + (i % 64) * 1024, 1024};
            batch[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &batch_iov[i], .msg_iovlen = 1}};
        }
        result = kind == RECVMMSG ? recvmmsg(fds[0], batch, n, 0, NULL) : sendmmsg(fds[0], batch, n, 0);
        break;
    }
    case SENDMMSG_STREAM: { /* 1 message, part of it sent: msg_len says how much */
        batch_iov[0] = (struct iovec){big, BIG};
        batch[0] = (struct mmsghdr){.msg_hdr = {.msg_iov = &batch_iov[0], .msg_iovlen = 1}};
        result = sendmmsg(fds[0], batch, 1, 0) == 1 ? (ssize_t)batch[0].msg_len : -1;
        break;
    }
    case KINDS: break;
    }
    __atomic_store_n(&returned, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void run(enum kind k) {
    kind = k;
    returned = 0;
    handled = 0;
    if (k == WRITE_PIPE) {
        int p[2];
        CHECK(pipe(p) == 0);
        fds[0] = p[1];
        fds[1] = p[0];
    } else {
        CHECK(socketpair(AF_UNIX, k == RECVMMSG || k == SENDMMSG ? SOCK_DGRAM : SOCK_STREAM, 0, fds) == 0);
    }
    if (k == RECV_WAITALL || k == RECVMSG_WAITALL) CHECK(write(fds[1], "0123456789", 10) == 10);
    if (k == RECVMMSG) CHECK(send(fds[1], "one", 3, 0) == 3 && send(fds[1], "two", 3, 0) == 3);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, call, NULL), 0);
    int signals = 0;
    while (!__atomic_load_n(&returned, __ATOMIC_SEQ_CST) && signals < 100) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        if (!__atomic_load_n(&returned, __ATOMIC_SEQ_CST)) {
            pthread_kill(t, SIGUSR1);
            signals++;
        }
    }
    int on_signal = __atomic_load_n(&returned, __ATOMIC_SEQ_CST);
    close(fds[1]); // frees a call that went on waiting (EPIPE, EOF)
    CHECK_RC(pthread_join(t, NULL), 0);
    close(fds[0]);
    const char *what = k == RECV_WAITALL || k == RECVMSG_WAITALL ? "the 10 bytes"
                       : k == RECVMMSG                           ? "the 2 datagrams"
                                                                 : "a partial count";
    int partial = k == RECV_WAITALL || k == RECVMSG_WAITALL ? result == 10
                  : k == RECVMMSG                           ? result == 2
                  : k == SENDMMSG                           ? result > 0 && result < 1000
                                                            : result > 0 && result < BIG;
    printf("%s: returned on a signal: %s, %s: %s, handler ran: %s\n", names[k], on_signal ? "yes" : "no", what,
           partial ? "yes" : "no", handled > 0 ? "yes" : "no");
    CHECK(on_signal);
    CHECK(partial);
}

int main(void) {
    program_start(60);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    char path[] = "/tmp/partial_then_signal.XXXXXX";
    file_fd = mkstemp(path);
    CHECK(file_fd >= 0 && unlink(path) == 0);
    CHECK(write(file_fd, big, BIG) == BIG);
    for (int k = 0; k < KINDS; k++) run((enum kind)k);
    if (check_failures) return 1;
    printf("partial_then_signal: all checks passed\n");
    return 0;
}
