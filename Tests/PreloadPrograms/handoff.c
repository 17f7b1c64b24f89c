/* handoff.c — a thread blocked in a call no event loop can wait for does
 * not stop the program's other threads (under `green run`: its hub goes on
 * without that OS thread).
 *
 * 1. A thread waits in flock() for a lock a child process holds; the child
 *    lets go only after two other threads have exchanged ROUNDS messages, so
 *    the program finishes only if they run while the lock wait blocks.
 * 2. A thread writes a file to disk in a loop (fsync after every MiB) while
 *    another answers REQUESTS requests from a third: every one is answered
 *    within a generous bound, and they are answered while the writer writes.
 * 3. After the calls, each thread is still itself: gettid() and
 *    pthread_self() unchanged, its TLS intact, errno as the call left it;
 *    and a thread that raise()s a signal while another waits in flock()
 *    runs the handler itself before raise returns (glibc's raise signals
 *    the OS thread its descriptor names, which a hand-off changes); its
 *    pthread_getcpuclockid clock counts the CPU it spins, not the time of
 *    the OS thread blocked in flock. */
#include "check.h"
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define ROUNDS 2000
#define REQUESTS 200
#define CHUNK (256 * 1024)

static char path[] = "/tmp/green-handoff-XXXXXX";
static int release_pipe[2];
static volatile int locking; /* the flock thread is about to wait */
static volatile int rounds_done;
static int pair[2];

static __thread int tls_mark;

static void *locker(void *arg) {
    (void)arg;
    pid_t tid = gettid();
    pthread_t self = pthread_self();
    tls_mark = 42;
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    locking = 1;
    CHECK(flock(fd, LOCK_EX) == 0); /* the child holds it until the others are done */
    CHECK(rounds_done == ROUNDS);
    CHECK(gettid() == tid);
    CHECK(pthread_equal(pthread_self(), self));
    CHECK(tls_mark == 42);
    errno = 0;
    CHECK(flock(-1, LOCK_EX) == -1 && errno == EBADF); /* errno from the call itself */
    close(fd);
    return NULL;
}

static void *pinger(void *arg) {
    (void)arg;
    while (!locking) sleep_ms(1);
    sleep_ms(50); /* the locker is in flock() by now */
    char c = 'x';
    for (int i = 0; i < ROUNDS; i++) {
        CHECK(write(pair[0], &c, 1) == 1);
        CHECK(read(pair[0], &c, 1) == 1);
    }
    rounds_done = ROUNDS;
    CHECK(raise(SIGUSR2) == 0); /* while the locker still waits in flock() */
    int here = handler_runs == 1 && pthread_equal(handler_thread, pthread_self());
    CHECK(here);
    printf("raise while another thread waits in flock: handled before it returned, in the raising thread: %s\n",
           here ? "yes" : "no");
    clockid_t cpu;
    struct timespec start, now, wall_start, wall;
    CHECK_RC(pthread_getcpuclockid(pthread_self(), &cpu), 0);
    CHECK(clock_gettime(cpu, &start) == 0);
    clock_gettime(CLOCK_MONOTONIC, &wall_start);
    long spun_ns = 0, waited_ms = 0;
    do { /* spin until its CPU clock counts 2 ms (at most 10 s) */
        CHECK(clock_gettime(cpu, &now) == 0);
        clock_gettime(CLOCK_MONOTONIC, &wall);
        spun_ns = (now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec);
        waited_ms = (wall.tv_sec - wall_start.tv_sec) * 1000L + (wall.tv_nsec - wall_start.tv_nsec) / 1000000L;
    } while (spun_ns < 2000000L && waited_ms < 10000);
    printf("its CPU clock while another thread waits in flock: counts its own CPU: %s\n",
           spun_ns >= 2000000L ? "yes" : "no");
    CHECK(write(release_pipe[1], "go", 2) == 2); /* the child lets go of the lock */
    return NULL;
}

static void *ponger(void *arg) {
    (void)arg;
    char c;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK(read(pair[1], &c, 1) == 1);
        CHECK(write(pair[1], &c, 1) == 1);
    }
    return NULL;
}

static void lock_wait(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record_handler; /* no SA_RESTART: a flock it interrupted would fail with EINTR */
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    CHECK(pipe(release_pipe) == 0);
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t child = fork();
    if (child == 0) {
        int own = open(path, O_RDWR); /* its own open file: its lock conflicts with the parent's */
        if (own < 0 || flock(own, LOCK_EX) != 0) _exit(2);
        if (write(ready[1], "r", 1) != 1) _exit(3);
        char buf[2];
        if (read(release_pipe[0], buf, 2) != 2) _exit(4);
        _exit(0); /* the lock goes with the process */
    }
    char r;
    CHECK(read(ready[0], &r, 1) == 1);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    pthread_t t[3];
    CHECK_RC(pthread_create(&t[0], NULL, locker, NULL), 0);
    CHECK_RC(pthread_create(&t[1], NULL, pinger, NULL), 0);
    CHECK_RC(pthread_create(&t[2], NULL, ponger, NULL), 0);
    for (int i = 0; i < 3; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    int status;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("lock wait: the others ran %d rounds meanwhile\n", rounds_done);
    close(fd);
    close(pair[0]);
    close(pair[1]);
}

static volatile int serving = 1;
static volatile int writing;
static long long written;
static int answered_while_writing;
static double slowest_ms;

static void *disk_writer(void *arg) {
    (void)arg;
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    char *chunk = malloc(CHUNK);
    memset(chunk, 'd', CHUNK);
    writing = 1;
    long long since_sync = 0;
    while (serving || written < 8 * 1024 * 1024) {
        ssize_t n = write(fd, chunk, CHUNK);
        CHECK(n == CHUNK);
        if (n <= 0) break;
        written += n;
        since_sync += n;
        if (since_sync >= 1024 * 1024) {
            CHECK(fsync(fd) == 0);
            since_sync = 0;
        }
        if (written >= 256LL * 1024 * 1024) { /* the file stays bounded */
            CHECK(lseek(fd, 0, SEEK_SET) == 0);
            written = 8 * 1024 * 1024;
        }
    }
    writing = 0;
    free(chunk);
    close(fd);
    return NULL;
}

static void *server(void *arg) {
    (void)arg;
    char buf[64];
    for (int i = 0; i < REQUESTS; i++) {
        ssize_t n = read(pair[1], buf, sizeof buf);
        CHECK(n > 0);
        if (n <= 0) break;
        CHECK(write(pair[1], buf, (size_t)n) == n);
    }
    return NULL;
}

static void *client(void *arg) {
    (void)arg;
    while (!writing) sleep_ms(1);
    char buf[64];
    for (int i = 0; i < REQUESTS; i++) {
        struct timespec start = ts_now(CLOCK_MONOTONIC);
        int len = snprintf(buf, sizeof buf, "request %d", i);
        CHECK(write(pair[0], buf, (size_t)len) == len);
        CHECK(read(pair[0], buf, sizeof buf) == len);
        double ms = ms_since(start);
        if (ms > slowest_ms) slowest_ms = ms;
        if (writing) answered_while_writing++;
        sleep_ms(2);
    }
    serving = 0;
    return NULL;
}

static void disk_and_sockets(void) {
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    pthread_t t[3];
    CHECK_RC(pthread_create(&t[0], NULL, disk_writer, NULL), 0);
    CHECK_RC(pthread_create(&t[1], NULL, server, NULL), 0);
    CHECK_RC(pthread_create(&t[2], NULL, client, NULL), 0);
    for (int i = 0; i < 3; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK(slowest_ms < 5000); /* generous: natively a few milliseconds */
    CHECK(answered_while_writing > REQUESTS / 2);
    printf("disk writer: %d requests answered, %s while the file was written\n", REQUESTS,
           answered_while_writing > REQUESTS / 2 ? "most" : "not");
    close(pair[0]);
    close(pair[1]);
}

/* pclose waits for its child inside glibc, where no interposer sees it:
 * the others go on meanwhile (the hub is handed off). */
static volatile int pclosing, pclose_done;
static long pclose_rounds;
static int pp[2];

static void *pcloser(void *arg) {
    (void)arg;
    FILE *f = popen("exec sleep 0.3", "r");
    CHECK(f != NULL);
    pclosing = 1;
    CHECK(f && pclose(f) == 0);
    pclose_done = 1;
    return NULL;
}

static void *pclose_pinger(void *arg) {
    (void)arg;
    while (!pclosing) sleep_ms(1);
    sleep_ms(20); /* the other thread is in pclose by now */
    char c = 'x';
    long n = 0;
    for (; !pclose_done; n++) {
        CHECK(write(pp[0], &c, 1) == 1);
        CHECK(read(pp[0], &c, 1) == 1);
    }
    pclose_rounds = n;
    CHECK(write(pp[0], "q", 1) == 1);
    return NULL;
}

static void *pclose_ponger(void *arg) {
    (void)arg;
    char c;
    while (read(pp[1], &c, 1) == 1 && c != 'q') CHECK(write(pp[1], &c, 1) == 1);
    return NULL;
}

static void pclose_wait(void) {
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pp) == 0);
    pthread_t t[3];
    CHECK_RC(pthread_create(&t[0], NULL, pcloser, NULL), 0);
    CHECK_RC(pthread_create(&t[1], NULL, pclose_pinger, NULL), 0);
    CHECK_RC(pthread_create(&t[2], NULL, pclose_ponger, NULL), 0);
    for (int i = 0; i < 3; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK(pclose_rounds >= 100);
    printf("pclose: the others ran %s meanwhile\n", pclose_rounds >= 100 ? "on" : "NOT");
    close(pp[0]);
    close(pp[1]);
}

int main(void) {
    program_start(120);
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    lock_wait();
    disk_and_sockets();
    pclose_wait();
    unlink(path);
    return program_end("handoff");
}
