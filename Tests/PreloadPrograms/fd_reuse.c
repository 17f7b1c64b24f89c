/* fd_reuse.c — a number closed and reused behind a reader's back is waited
 * on as its new file. The library keeps an fd registered with its event
 * loop between waits, so it must notice every new file behind a number,
 * whichever way the old one went: close from another thread, fclose (glibc
 * closes the fd internally), dup2 onto it, close_range and closefrom (which
 * must also leave the library's own fds alone), syscall(SYS_close).
 *
 * Each round: the reader waits on number M until a byte arrives through its
 * first file; at once, with no other wait in between, M gets a new file
 * (a pipe's read end), and the reader waits on M again for a byte that a
 * writer thread sends 20 ms later. A new file the library missed is a read
 * that never returns: the watchdog's SIGALRM. */
#include "check.h"
#include <fcntl.h>
#include <semaphore.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* The writer: for each post of `go`, sleeps 20 ms and writes `byte` to `target`. */
static sem_t go;
static int target = -1;
static char byte;

static void *writer(void *arg) {
    (void)arg;
    for (;;) {
        while (sem_wait(&go) != 0) {}
        if (target < 0) return NULL;
        sleep_ms(20);
        CHECK(write(target, &byte, 1) == 1);
    }
}

static void send_later(int fd, char b) {
    target = fd;
    byte = b;
    sem_post(&go);
}

/* A blocking read of one byte from fd: the byte, or -1. */
static int read_byte(int fd) {
    char b;
    return read(fd, &b, 1) == 1 ? b : -1;
}

/* The closer, another thread (with more than one hub, on another OS
 * thread): closes `victim`, makes a pipe (whose read end takes the number)
 * and publishes it. */
static sem_t close_go;
static int victim = -1;
static int reopened[2] = {-1, -1};
static volatile int reopened_ready;

static void *closer(void *arg) {
    (void)arg;
    for (;;) {
        while (sem_wait(&close_go) != 0) {}
        if (victim < 0) return NULL;
        CHECK(close(victim) == 0);
        CHECK(pipe(reopened) == 0);
        __atomic_store_n(&reopened_ready, 1, __ATOMIC_RELEASE);
    }
}

enum how { BY_CLOSE_ELSEWHERE, BY_FCLOSE, BY_DUP2, BY_CLOSE_RANGE, BY_CLOSEFROM, BY_SYSCALL };
static const char *const names[] = {"another thread's close", "fclose", "dup2", "close_range", "closefrom",
                                    "syscall(SYS_close)"};

/* One round; returns whether the second byte arrived through the new file. */
static int round_by(enum how how, char tag) {
    int first[2];
    CHECK(pipe(first) == 0);
    FILE *stream = NULL;
    int m = first[0];
    if (how == BY_FCLOSE) { /* a stream of its own on the same pipe: glibc closes its fd */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", first[0]);
        stream = fopen(path, "r");
        CHECK(stream != NULL);
        if (!stream) return 0;
        m = fileno(stream);
    }
    send_later(first[1], tag);
    CHECK(read_byte(m) == tag); /* M is now registered with the reader's event loop */

    int second[2] = {-1, -1};
    switch (how) {
    case BY_CLOSE_ELSEWHERE:
        victim = m;
        __atomic_store_n(&reopened_ready, 0, __ATOMIC_RELEASE);
        sem_post(&close_go);
        while (!__atomic_load_n(&reopened_ready, __ATOMIC_ACQUIRE)) {} /* no wait of our own meanwhile */
        second[0] = reopened[0];
        second[1] = reopened[1];
        break;
    case BY_FCLOSE:
        CHECK(fclose(stream) == 0);
        CHECK(pipe(second) == 0);
        break;
    case BY_DUP2: {
        int fresh[2];
        CHECK(pipe(fresh) == 0);
        CHECK(dup2(fresh[0], m) == m); /* M's old file had no other number: it is gone */
        CHECK(close(fresh[0]) == 0);
        second[0] = m;
        second[1] = fresh[1];
        break;
    }
    case BY_CLOSE_RANGE:
        CHECK(close(first[1]) == 0);
        CHECK(close_range((unsigned)m, ~0U, 0) == 0); /* also the library's own numbers, if it let them go */
        CHECK(pipe(second) == 0);
        first[1] = -1;
        break;
    case BY_CLOSEFROM:
        CHECK(close(first[1]) == 0);
        closefrom(m);
        CHECK(pipe(second) == 0);
        first[1] = -1;
        break;
    case BY_SYSCALL:
        CHECK(syscall(SYS_close, m) == 0);
        CHECK(pipe(second) == 0);
        break;
    }
    CHECK(second[0] == m); /* the lowest free number: M again */
    send_later(second[1], (char)(tag + 1));
    int got = read_byte(m);
    if (got != tag + 1) printf("round %s: read %d (errno %d), expected %d\n", names[how], got, errno, tag + 1);
    CHECK(got == tag + 1);
    close(second[0]);
    close(second[1]);
    if (first[1] >= 0) close(first[1]);
    if (how == BY_FCLOSE) close(first[0]); /* the other rounds closed it to free M */
    return got == tag + 1;
}

/* A read of one byte on another thread, blocked until the byte comes. */
static int blocked_fd = -1;
static volatile int blocked_got = -2;

static void *blocked_reader(void *arg) {
    (void)arg;
    blocked_got = read_byte(blocked_fd);
    return NULL;
}

/* Calls that fail on `fd` while another thread's read waits on it: the
 * read goes on waiting, and gets the byte sent afterwards (the library
 * woke such a waiter with EBADF, as for a close). `refuse` makes the calls
 * and says whether each failed as natively. */
static int read_survives(int (*refuse)(int fd)) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    blocked_fd = sv[0];
    blocked_got = -2;
    pthread_t r;
    CHECK_RC(pthread_create(&r, NULL, blocked_reader, NULL), 0);
    sleep_ms(30); /* the read is waiting */
    int refused = refuse(sv[0]);
    CHECK(blocked_got == -2);
    CHECK(write(sv[1], "s", 1) == 1);
    CHECK_RC(pthread_join(r, NULL), 0);
    close(sv[0]);
    close(sv[1]);
    return refused && blocked_got == 's';
}

static int refuse_dups(int fd) {
    int spare = dup(2);
    CHECK(spare >= 0);
    close(spare); /* a number that is not open */
    int ok = 1;
    errno = 0;
    ok &= dup2(spare, fd) == -1 && errno == EBADF;
    errno = 0;
    ok &= dup3(spare, fd, O_CLOEXEC) == -1 && errno == EBADF;
    errno = 0;
    ok &= dup3(2, fd, 0x1234) == -1 && errno == EINVAL;
    return ok;
}

static int refuse_close_range(int fd) {
    errno = 0;
    return close_range((unsigned)fd, (unsigned)fd, 0) == -1 && errno == ENOSYS;
}

/* A kernel without close_range (before 5.9), as seccomp makes it look:
 * closefrom then closes what /proc/self/fd lists, and still not the
 * library's own fds. In a child: the filter stays with the process. */
static int closefrom_without_close_range(void) {
    pid_t kid = fork();
    if (kid == 0) {
        struct sock_filter code[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) _exit(2);
        if (close_range(3, ~0U, 0) == 0 || errno != ENOSYS) _exit(3);
        if (!read_survives(refuse_close_range)) _exit(8);
        int p[2];
        if (pipe(p) != 0) _exit(4);
        int high = fcntl(p[0], F_DUPFD, 600);
        closefrom(3);
        if (fcntl(p[0], F_GETFD) != -1 || fcntl(p[1], F_GETFD) != -1 || fcntl(high, F_GETFD) != -1) _exit(5);
        sleep_ms(5); /* the event loop still works: a sleep and a thread */
        pthread_t t;
        if (pthread_create(&t, NULL, writer, NULL) != 0) _exit(6);
        target = -1;
        sem_post(&go);
        _exit(pthread_join(t, NULL) == 0 ? 0 : 7);
    }
    int status = -1;
    CHECK(waitpid(kid, &status, 0) == kid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* A read that starts on one thread while another thread (with several hubs,
 * maybe on another OS thread) closes the socket: nothing aborts, and the
 * read returns — the byte sent afterwards (natively: the blocked read keeps
 * the file) or EBADF (the library woke it, on whichever hub: its wait holds
 * no reference), never EAGAIN at its 300 ms SO_RCVTIMEO (a waiter left
 * behind). The reader's hub is kept busy by a spinning thread after
 * the read starts, so the close can land before that hub next polls (libev
 * aborted when it then gave the kernel the closed number). */
static int race_pair[2];
static volatile int race_reading, race_closed, race_spin;

static void *race_reader(void *arg) {
    char b;
    __atomic_store_n(&race_reading, 1, __ATOMIC_SEQ_CST);
    ssize_t n = read(race_pair[0], &b, 1);
    *(int *)arg = n == 1 ? (b == 'r' ? 1 : -2) : (errno == EBADF ? 0 : -errno);
    return NULL;
}

static void *race_spinner(void *arg) {
    (void)arg;
    struct timespec t0 = ts_now(CLOCK_MONOTONIC);
    while (__atomic_load_n(&race_spin, __ATOMIC_SEQ_CST) && ms_since(t0) < 20) {}
    return NULL;
}

static void *race_closer(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&race_reading, __ATOMIC_SEQ_CST)) sched_yield();
    usleep(200);
    CHECK(close(race_pair[0]) == 0);
    __atomic_store_n(&race_closed, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int close_while_read_starts(void) {
    int bad = 0;
    for (int round = 0; round < 30; round++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, race_pair) == 0);
        struct timeval tv = {0, 300000};
        CHECK(setsockopt(race_pair[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
        race_reading = race_closed = 0;
        race_spin = 1;
        int result = -100;
        pthread_t r, sp, c;
        CHECK_RC(pthread_create(&c, NULL, race_closer, NULL), 0);
        CHECK_RC(pthread_create(&r, NULL, race_reader, &result), 0);
        CHECK_RC(pthread_create(&sp, NULL, race_spinner, NULL), 0);
        while (!__atomic_load_n(&race_closed, __ATOMIC_SEQ_CST)) sched_yield();
        __atomic_store_n(&race_spin, 0, __ATOMIC_SEQ_CST);
        ssize_t w = write(race_pair[1], "r", 1);
        CHECK(w == 1 || errno == EPIPE);
        CHECK_RC(pthread_join(c, NULL), 0);
        CHECK_RC(pthread_join(r, NULL), 0);
        CHECK_RC(pthread_join(sp, NULL), 0);
        if (result != 1 && result != 0) { printf("close race round %d: read gave %d\n", round, result); bad++; }
        close(race_pair[1]);
    }
    return bad;
}

/* A read waiting on a socket (no timeout) when another thread closes the
 * number: the read returns — natively with the byte sent after the close
 * (the read holds the file), here with EBADF (the library wakes the
 * waiters of a closed number on every hub: the file may be gone) — and
 * never hangs. The reader is made while this thread spins, so that with
 * several hubs it mostly runs on another hub than the closer. */
static int closed_pair[2];

/* A one-byte read by another thread, and what it gave. */
typedef struct waiting_read {
    int fd;
    volatile int waiting; /* set right before the read blocks */
    ssize_t n;
    char byte;
    int err;
} waiting_read;

static void *waiting_reader(void *arg) {
    waiting_read *w = arg;
    w->waiting = 1;
    w->n = read(w->fd, &w->byte, 1);
    w->err = errno;
    return NULL;
}

/* The close tests' verdict on a read: 1 it got `sent` (natively, after a
 * close), -1 it got `intruder` (a new file's byte), 0 EBADF or, where
 * `eof_ok`, EOF; -2 another byte, -3 another error. */
static int read_verdict(const waiting_read *w, char sent, char intruder, int eof_ok) {
    if (w->n == 1) return w->byte == sent ? 1 : w->byte == intruder ? -1 : -2;
    return (w->n < 0 && w->err == EBADF) || (w->n == 0 && eof_ok) ? 0 : -3;
}

/* Start a read of w->fd on a new thread, made while this one spins so that
 * with several hubs it mostly runs on another, and return once its call
 * waits (it sets w->waiting first, then blocks; 10 ms more). */
static pthread_t start_waiting_reader(waiting_read *w) {
    w->waiting = 0;
    pthread_t r;
    CHECK_RC(pthread_create(&r, NULL, waiting_reader, w), 0);
    struct timespec t0 = ts_now(CLOCK_MONOTONIC);
    while (ms_since(t0) < 5) {} /* busy: the new thread goes to an idle hub */
    while (!w->waiting) sleep_ms(1);
    sleep_ms(10);
    return r;
}

/* Join t within 5 s; 0 if it ended, else (it still waits) -1 and a line. */
static int join_within_5s(pthread_t t, const char *what, int round) {
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 5;
    if (pthread_timedjoin_np(t, NULL, &limit) == 0) return 0;
    printf("%s, round %d: the read still waits after 5 s\n", what, round);
    return -1;
}

static int close_one(int fd) { return close(fd); }
static int close_range_of_one(int fd) { return close_range((unsigned)fd, (unsigned)fd, 0); }

static int close_under_waiting_read_by(int (*close_it)(int fd), int rounds) {
    int bad = 0;
    for (int round = 0; round < rounds; round++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, closed_pair) == 0);
        waiting_read reading = {.fd = closed_pair[0]};
        pthread_t r = start_waiting_reader(&reading);
        CHECK(close_it(closed_pair[0]) == 0);
        ssize_t w = write(closed_pair[1], "h", 1);
        CHECK(w == 1 || errno == EPIPE);
        if (join_within_5s(r, "close under a waiting read", round) != 0) {
            bad++;
            break; /* the thread stays blocked: leave it */
        }
        int result = read_verdict(&reading, 'h', 0, 0);
        if (result != 1 && result != 0) { printf("close under a waiting read, round %d: read gave %d\n", round, result); bad++; }
        close(closed_pair[1]);
    }
    return bad;
}

/* By close, and by close_range of that one number. */
static int close_under_waiting_read(void) {
    return close_under_waiting_read_by(close_one, 12) + close_under_waiting_read_by(close_range_of_one, 8);
}

/* The same from a child forked by a thread other than main (with several
 * hubs, on a hub other than the first): the child's hub takes the first
 * place among its hubs, and a close on any of them still reaches the
 * waiters of the others, both ways round. */
static void *close_then_send(void *arg) {
    (void)arg;
    struct timespec t0 = ts_now(CLOCK_MONOTONIC);
    while (ms_since(t0) < 5) {} /* busy: with several hubs, another one takes the reader's turn */
    sleep_ms(20);
    CHECK(close(closed_pair[0]) == 0);
    ssize_t w = write(closed_pair[1], "h", 1);
    CHECK(w == 1 || errno == EPIPE);
    return NULL;
}

/* This thread reads while a new thread closes the number (the roles of
 * close_under_waiting_read swapped): the read returns, 'h' or EBADF. */
static int read_while_new_thread_closes(void) {
    int bad = 0;
    for (int round = 0; round < 10; round++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, closed_pair) == 0);
        pthread_t c;
        CHECK_RC(pthread_create(&c, NULL, close_then_send, NULL), 0);
        alarm(5); /* a read left waiting: the child dies of SIGALRM */
        char b;
        ssize_t n = read(closed_pair[0], &b, 1);
        alarm(0);
        if (!(n == 1 && b == 'h') && !(n < 0 && errno == EBADF)) bad++;
        CHECK_RC(pthread_join(c, NULL), 0);
        close(closed_pair[1]);
    }
    return bad;
}

static void *fork_and_close_under_read(void *arg) {
    pid_t kid = fork();
    if (kid == 0) _exit(close_under_waiting_read() == 0 && read_while_new_thread_closes() == 0 ? 0 : 1);
    int status = -1;
    CHECK(waitpid(kid, &status, 0) == kid);
    *(int *)arg = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return NULL;
}

/* A close that lingers (SO_LINGER, unsent bytes the peer does not read):
 * the kernel frees the number at once but the call returns a second later.
 * Meanwhile another thread's socketpair takes the number and reads it;
 * when the close returns, that read must go on to its byte (it is on the
 * new file) — the library told the reader's hub of the close, and a wait
 * begun while a close was under way is retried, not failed with EBADF. */
static int newfile_pair[2] = {-1, -1};
static volatile int newfile_ready, newfile_is_pipe;

static void *newfile_reader(void *arg) {
    sleep_ms(300); /* inside the lingering close */
    CHECK((newfile_is_pipe ? pipe(newfile_pair) : socketpair(AF_UNIX, SOCK_STREAM, 0, newfile_pair)) == 0);
    newfile_ready = 1;
    *(int *)arg = read_byte(newfile_pair[0]);
    return NULL;
}

/* With a socketpair's end or a pipe's read end as the new file (a pipe's
 * read, once woken, does not ask whether it is ready: a readiness that is
 * not there would block its hub in the kernel). */
static int new_file_during_lingering_close(int use_pipe) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0);
    CHECK(getsockname(l, (struct sockaddr *)&a, &al) == 0);
    int c = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    CHECK(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    int p = accept(l, NULL, NULL);
    CHECK(p >= 0 && setsockopt(p, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    static char buf[65536];
    while (send(c, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    struct linger lg = {1, 1};
    CHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    newfile_ready = 0;
    newfile_is_pipe = use_pipe;
    int got = -2;
    pthread_t r;
    CHECK_RC(pthread_create(&r, NULL, newfile_reader, &got), 0);
    struct timespec t0 = ts_now(CLOCK_MONOTONIC);
    while (ms_since(t0) < 5) {} /* busy: the new thread goes to an idle hub */
    close(c); /* EWOULDBLOCK after the linger time, or 0: either way the number is gone */
    sleep_ms(200);
    while (!newfile_ready) sleep_ms(1);
    CHECK(newfile_pair[0] == c); /* the new file took the closed number (the lowest free) */
    CHECK(write(newfile_pair[1], "x", 1) == 1);
    CHECK_RC(pthread_join(r, NULL), 0);
    close(newfile_pair[0]);
    close(newfile_pair[1]);
    close(p);
    close(l);
    return got == 'x';
}

/* A close made by a signal handler while another thread's read waits on
 * the number: the read returns ('h' natively, EBADF here) and nothing
 * breaks (the handler may have interrupted the library while it changed
 * its lists of waits: it tells the hub, which wakes the read after). */
static int handler_fd = -1;
static void close_in_handler(int sig) {
    (void)sig;
    int e = errno;
    close(handler_fd);
    errno = e;
}

static int close_in_signal_handler(void) {
    int bad = 0;
    struct sigaction sa = {.sa_handler = close_in_handler}, old;
    CHECK(sigaction(SIGUSR2, &sa, &old) == 0);
    for (int round = 0; round < 10; round++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, closed_pair) == 0);
        handler_fd = closed_pair[0];
        waiting_read reading = {.fd = closed_pair[0]};
        pthread_t r = start_waiting_reader(&reading);
        CHECK(kill(getpid(), SIGUSR2) == 0); /* the handler closes it (on whichever thread takes it) */
        sleep_ms(10);
        ssize_t w = write(closed_pair[1], "h", 1);
        CHECK(w == 1 || errno == EPIPE);
        if (join_within_5s(r, "close in a signal handler", round) != 0) {
            bad++;
            break;
        }
        int result = read_verdict(&reading, 'h', 0, 0);
        if (result != 1 && result != 0) { printf("close in a signal handler, round %d: read gave %d\n", round, result); bad++; }
        close(closed_pair[1]);
    }
    CHECK(sigaction(SIGUSR2, &old, NULL) == 0);
    return bad;
}

/* A range close under a read waiting on another thread, and a new pipe
 * that takes the numbers at once and gets a byte: the read must not return
 * the new pipe's byte (natively it ends with EOF: both ends of its own pipe
 * are closed; here EBADF). The range's word alone could not tell the
 * reader's hub that its number was among those closed. */
static int old_pipe[2];

static int range_close_then_new_pipe(void) {
    int bad = 0, rounds = 0;
    for (int round = 0; round < 20; round++) {
        CHECK(pipe(old_pipe) == 0);
        if (old_pipe[1] != old_pipe[0] + 1) { close(old_pipe[0]); close(old_pipe[1]); continue; }
        rounds++;
        waiting_read reading = {.fd = old_pipe[0]};
        pthread_t r = start_waiting_reader(&reading);
        CHECK(close_range((unsigned)old_pipe[0], (unsigned)old_pipe[1], 0) == 0);
        int fresh[2];
        CHECK(pipe(fresh) == 0);
        CHECK(write(fresh[1], "q", 1) == 1);
        if (join_within_5s(r, "range close, then a new pipe", round) != 0) {
            bad++;
            break;
        }
        int result = read_verdict(&reading, 0, 'q', 1);
        if (result != 0) { printf("range close, then a new pipe, round %d: read gave %d\n", round, result); bad++; }
        close(fresh[0]);
        close(fresh[1]);
    }
    CHECK(rounds > 0);
    return bad;
}

int main(void) {
    program_start(60);
    sem_init(&go, 0, 0);
    sem_init(&close_go, 0, 0);
    /* close_range and closefrom close everything from M up: the helper
     * threads are made first so that their own resources sit below. */
    pthread_t w, c;
    CHECK_RC(pthread_create(&w, NULL, writer, NULL), 0);
    CHECK_RC(pthread_create(&c, NULL, closer, NULL), 0);
    for (int how = BY_CLOSE_ELSEWHERE; how <= BY_SYSCALL; how++) {
        int ok = 1;
        for (int i = 0; i < 20; i++) ok &= round_by((enum how)how, (char)('A' + 2 * i));
        printf("reused by %s: %s\n", names[how], ok ? "new file waited on" : "MISSED");
    }
    victim = -1;
    sem_post(&close_go);
    target = -1;
    sem_post(&go);
    CHECK_RC(pthread_join(w, NULL), 0);
    CHECK_RC(pthread_join(c, NULL), 0);
    /* After closefrom the library's event loop still works: a sleep and a thread. */
    sleep_ms(5);
    printf("after closefrom: threads and sleeps work\n");

    /* A close_range the kernel refuses closes nothing, and changes nothing:
     * a blocking read of the socket still waits for its byte. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_ERRNO(close_range((unsigned)sv[0], (unsigned)sv[0], 0x4000), EINVAL);
    CHECK_ERRNO(close_range((unsigned)sv[1], (unsigned)sv[0], 0), EINVAL);
    pthread_t w2;
    CHECK_RC(pthread_create(&w2, NULL, writer, NULL), 0);
    send_later(sv[1], 'z');
    CHECK(read_byte(sv[0]) == 'z');
    target = -1;
    sem_post(&go);
    CHECK_RC(pthread_join(w2, NULL), 0);
    close(sv[0]);
    close(sv[1]);
    /* fclose of a stream with no fd leaves errno alone, as libc's. */
    char mem[16];
    FILE *m = fmemopen(mem, sizeof mem, "w");
    errno = 0;
    CHECK(m && fclose(m) == 0);
    CHECK(errno == 0);
    printf("refused close_range and fdless fclose: nothing changed\n");
    CHECK(read_survives(refuse_dups));
    printf("failed dup2 and dup3: a read waiting on the number goes on\n");
    signal(SIGPIPE, SIG_IGN);
    CHECK(close_while_read_starts() == 0);
    printf("close while a read starts on another thread: the read returned, 30 rounds\n");
    CHECK(close_under_waiting_read() == 0);
    printf("close (or close_range) under a read waiting on another thread: the read returned, 20 rounds\n");
    int forked = -1;
    pthread_t f;
    CHECK_RC(pthread_create(&f, NULL, fork_and_close_under_read, &forked), 0);
    CHECK_RC(pthread_join(f, NULL), 0);
    CHECK(forked == 0);
    printf("the same in a child forked by a thread: %s\n", forked == 0 ? "the read returned" : "FAILED");
    CHECK(range_close_then_new_pipe() == 0);
    printf("a range close under a waiting read, then a new pipe on its numbers: no byte of the new pipe read\n");
    CHECK(close_in_signal_handler() == 0);
    printf("close in a signal handler under a waiting read: the read returned, 10 rounds\n");
    CHECK(new_file_during_lingering_close(0));
    CHECK(new_file_during_lingering_close(1));
    printf("a new file (socket, pipe) taking the number of a lingering close: its read gets its byte\n");
    int child = closefrom_without_close_range();
    if (child != 0) printf("closefrom child: exit %d\n", child);
    CHECK(child == 0);
    printf("closefrom without close_range: %s\n",
           child == 0 ? "a refused close_range left a waiting read alone; listed fds closed, the library's kept"
                      : "FAILED");
    return program_end("fd_reuse");
}
