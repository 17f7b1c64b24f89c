/* fair_turns.c — a thread whose calls always complete at once (a select that
 * always finds a writable socket, as during a TLS handshake; epoll_wait or
 * poll with a zero timeout; a read that always has bytes; usleep(0); a
 * semaphore taken in a loop, as a Python thread's queue does; sigaction in
 * a loop) still
 * lets the other threads and their timers run. Natively the kernel
 * preempts; on fibers the shim gives a turn every few such calls. Each case
 * spins until another thread, woken by a timer, sets a flag. Last, the
 * calls of signal handlers that run while every thread waits (on fibers:
 * on the idle hub, in the waiting thread's TLS) count toward no turn that
 * could move the hub itself, even after a streak the thread left there. */
#include "check.h"
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>

static int stop;
static int sv[2];

static void *set_stop_later(void *unused) {
    (void)unused;
    sleep_ms(30); /* a timer: needs the hub (or the kernel) to get a turn */
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

typedef long (*spin_fn)(void);

static long spin_select(void) {
    long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        fd_set w;
        FD_ZERO(&w);
        FD_SET(sv[0], &w);
        struct timeval tv = {5, 0};
        if (select(sv[0] + 1, NULL, &w, NULL, &tv) == 1 && FD_ISSET(sv[0], &w)) n++;
    }
    return n;
}

static long spin_poll_zero(void) {
    long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        struct pollfd p = {.fd = sv[0], .events = POLLIN};
        if (poll(&p, 1, 0) == 0) n++; /* nothing to read: returns 0 at once */
    }
    return n;
}

static long spin_epoll_zero(void) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = sv[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
    long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        struct epoll_event out[4];
        if (epoll_wait(ep, out, 4, 0) == 1) n++; /* always writable */
    }
    close(ep);
    return n;
}

static long spin_read(void) {
    /* A writer keeps the socket full; the reader always finds bytes. */
    long n = 0;
    char buf[64];
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        if (send(sv[1], "0123456789abcdef", 16, MSG_DONTWAIT) < 0 && errno != EAGAIN) break;
        if (read(sv[0], buf, sizeof buf) > 0) n++;
    }
    return n;
}

static long spin_usleep_zero(void) {
    long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        usleep(0);
        n++;
    }
    return n;
}

static long spin_semaphore(void) {
    sem_t s;
    sem_init(&s, 0, 0);
    long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        sem_post(&s);
        if (sem_trywait(&s) == 0) n++;
    }
    sem_destroy(&s);
    return n;
}

static void on_usr1(int sig) { (void)sig; }

static long spin_sigaction(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST))
        if (sigaction(SIGUSR1, &sa, NULL) == 0) n++;
    return n;
}

static void run(const char *what, spin_fn spin) {
    __atomic_store_n(&stop, 0, __ATOMIC_SEQ_CST);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, set_stop_later, NULL), 0);
    long n = spin();
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK(n > 0);
    printf("%s: the spinning thread let the timer thread stop it\n", what);
}

// ---- handlers on an idle hub -------------------------------------------------

static int handler_pipe[2], release_pipe[2];
static volatile sig_atomic_t usr1_runs;

/* A self-pipe handler: each run is three write() calls. */
static void write_from_handler(int sig) {
    (void)sig;
    for (int i = 0; i < 3; i++) {
        char c = 'x';
        if (write(handler_pipe[1], &c, 1) != 1) break;
    }
    usr1_runs++;
}

/* SIGUSR1 runs `handler`, blocked in the calling thread (its mask before
 * in *old) and unblocked in a new thread that runs fn: the one that takes it. */
static pthread_t start_usr1_taker(void (*handler)(int), void *(*fn)(void *), sigset_t *old) {
    CHECK(set_handler(SIGUSR1, handler, SA_RESTART) == 0);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, old) == 0);
    pthread_t taker;
    CHECK(pthread_create(&taker, NULL, fn, NULL) == 0);
    return taker;
}

/* In the taker: SIGUSR1 unblocked, wait in read() on fd until a byte comes. */
static void *take_usr1_until_released(int fd) {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    char c;
    ssize_t n;
    do n = read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    return (void *)(long)n;
}

/* The one thread that takes SIGUSR1: waits in read() until released. */
static void *wait_for_release(void *unused) {
    (void)unused;
    return take_usr1_until_released(release_pipe[0]);
}

/* 300 signals from another process while both threads wait (the main
 * thread in waitpid, the other in read): the handler's 900 writes pass
 * 64 calls many times over, and the threads, the timers and the hub go on
 * as before. */
static void handlers_while_all_wait(void) {
    CHECK(pipe(handler_pipe) == 0 && pipe(release_pipe) == 0);
    CHECK(fcntl(handler_pipe[1], F_SETFL, O_NONBLOCK) == 0);
    sigset_t old;
    pthread_t reader = start_usr1_taker(write_from_handler, wait_for_release, &old);
    sleep_ms(20); // the reader waits
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 300; i++) {
            kill(getppid(), SIGUSR1);
            usleep(300);
        }
        _exit(0);
    }
    CHECK(child > 0);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status));
    sleep_ms(20); // a timer still fires
    char c = 'r';
    CHECK(write(release_pipe[1], &c, 1) == 1);
    void *got = NULL;
    CHECK(pthread_join(reader, &got) == 0 && got == (void *)1L);
    CHECK(usr1_runs > 0);
    char drain[4096];
    long bytes = 0;
    ssize_t n;
    while ((n = read(handler_pipe[0], drain, sizeof drain)) > 0 && (bytes += n) < 3L * usr1_runs) {}
    CHECK(bytes == 3L * usr1_runs);
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
    printf("handlers while every thread waits: %s\n",
           usr1_runs > 0 && bytes == 3L * usr1_runs ? "every run's writes arrived, both threads went on" : "FAILED");
}

// ---- a handler after a thread's streak ---------------------------------------

enum { STREAK_CALLS = 60, HANDLER_CALLS = 80 };
static int streak_pipe[2], streak_release[2], streak_verdict[2];

static void write_80_from_handler(int sig) {
    (void)sig;
    for (int i = 0; i < HANDLER_CALLS; i++) {
        char c = 'h';
        if (write(streak_pipe[1], &c, 1) != 1) break;
    }
}

/* Takes SIGUSR1; makes 60 calls that never park (60 of the 64 of a fair
 * turn), then waits in read(). */
static void *streak_then_wait(void *unused) {
    (void)unused;
    for (int i = 0; i < STREAK_CALLS; i++) {
        char c = 's';
        if (write(streak_pipe[1], &c, 1) != 1) break;
    }
    return take_usr1_until_released(streak_release[0]);
}

/* Every thread of process `pid` waits in the kernel (none running or runnable). */
static int all_asleep(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    int seen = 0, running = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char stat[512];
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/stat", (int)pid, e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, stat, sizeof stat - 1);
        close(fd);
        if (n <= 0) continue;
        stat[n] = 0;
        char *end = strrchr(stat, ')'); // "tid (name) S ..."
        if (!end || end[1] != ' ' || !end[2]) continue;
        seen++;
        running += end[2] == 'R';
    }
    closedir(d);
    return seen > 0 && running == 0;
}

static int read_bytes(int fd, long want) {
    char buf[256];
    for (long got = 0; got < want;) {
        ssize_t n = read(fd, buf, (size_t)(want - got) < sizeof buf ? (size_t)(want - got) : sizeof buf);
        if (n <= 0) return 0;
        got += n;
    }
    return 1;
}

/* The count of a thread's calls that never parked is zeroed at a switch in
 * the TLS the switch leaves, so a handler run for that thread on the idle
 * hub (in its TLS) starts no fair turn from what the thread left there. It
 * was zeroed in the TLS loaded instead: the thread below blocked with 60
 * left, the handler's 80 calls made 64 twice, each a fair turn that queued
 * the hub fiber itself (the one running), the second linked to itself, and
 * the hub went round its loop, never sleeping, until a thread was woken.
 * A child watches every thread of this process: asleep before it sends the
 * signal (the handler runs on the idle hub), and asleep again after the
 * handler's bytes came, before it lets the threads go on. */
static void handler_after_streak(void) {
    CHECK(pipe(streak_pipe) == 0 && pipe(streak_release) == 0 && pipe(streak_verdict) == 0);
    CHECK(fcntl(streak_pipe[1], F_SETFL, O_NONBLOCK) == 0);
    sigset_t old;
    pthread_t waiter = start_usr1_taker(write_80_from_handler, streak_then_wait, &old);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        if (!read_bytes(streak_pipe[0], STREAK_CALLS)) _exit(2);
        while (!all_asleep(parent)) usleep(200); // the thread waits in read(), the main thread below
        kill(parent, SIGUSR1);
        if (!read_bytes(streak_pipe[0], HANDLER_CALLS)) _exit(2);
        int polls = 0;
        while (!all_asleep(parent) && ++polls < 3000) usleep(1000); // 3 s: the hub spun
        char verdict = polls < 3000 ? 'y' : 'n';
        _exit(write(streak_verdict[1], &verdict, 1) == 1 ? 0 : 2);
    }
    CHECK(child > 0);
    close(streak_verdict[1]); // the child's alone: no verdict is an end of file
    char verdict = 0;
    CHECK(read(streak_verdict[0], &verdict, 1) == 1);
    char c = 'r';
    CHECK(write(streak_release[1], &c, 1) == 1);
    void *got = NULL;
    CHECK(pthread_join(waiter, &got) == 0 && got == (void *)1L);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(verdict == 'y');
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
    for (int fd = 0; fd < 2; fd++) {
        close(streak_pipe[fd]);
        close(streak_release[fd]);
    }
    close(streak_verdict[0]);
    if (verdict == 'y') printf("a handler after a thread's streak: the hub slept again\n");
}

int main(void) {
    program_start(30);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    run("select always writable", spin_select);
    run("poll with zero timeout", spin_poll_zero);
    run("epoll_wait with zero timeout", spin_epoll_zero);
    char drain[4096];
    while (recv(sv[0], drain, sizeof drain, MSG_DONTWAIT) > 0) {}
    run("read always has bytes", spin_read);
    run("usleep(0)", spin_usleep_zero);
    run("semaphore post and trywait", spin_semaphore);
    run("sigaction", spin_sigaction);
    handlers_while_all_wait();
    handler_after_streak();
    return program_end("fair_turns");
}
