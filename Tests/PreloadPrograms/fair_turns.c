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
 * could move the hub itself. */
#include "check.h"
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
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

/* The one thread that takes SIGUSR1: waits in read() until released. */
static void *wait_for_release(void *unused) {
    (void)unused;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    char c;
    ssize_t n;
    do n = read(release_pipe[0], &c, 1);
    while (n < 0 && errno == EINTR);
    return (void *)(long)n;
}

/* 300 signals from another process while both threads wait (the main
 * thread in waitpid, the other in read): the handler's 900 writes pass
 * 64 calls many times over, and the threads, the timers and the hub go on
 * as before. */
static void handlers_while_all_wait(void) {
    CHECK(pipe(handler_pipe) == 0 && pipe(release_pipe) == 0);
    CHECK(fcntl(handler_pipe[1], F_SETFL, O_NONBLOCK) == 0);
    CHECK(set_handler(SIGUSR1, write_from_handler, SA_RESTART) == 0);
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &usr1, &old) == 0);
    pthread_t reader;
    CHECK(pthread_create(&reader, NULL, wait_for_release, NULL) == 0);
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
    return program_end("fair_turns");
}
