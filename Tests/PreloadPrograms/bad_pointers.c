/* bad_pointers.c — the interposed calls given pointers the kernel refuses:
 * NULL, (void *)1 and a PROT_NONE page ("none"), on blocking sockets and
 * pipes where the call would otherwise wait. Natively each fails at once
 * with the kernel's errno (EFAULT, or the error it checks first); a shim
 * that reads the program's memory before the kernel has looked at it
 * crashed instead (SIGSEGV in the interposer). Each group prints one line
 * with every case's result, as the native run gives it. A crash prints the
 * case it died in. Calls whose libc reads the memory itself (ppoll's and
 * pselect's timeout, sigwait's int *) crash natively too and are not here;
 * their system calls are (the "syscall" group). */
#include "check.h"
#include <setjmp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <stddef.h>

static void *bad[3];
static const char *bad_name[3] = {"NULL", "1", "none"};
static void *readonly_page; /* readable, not writable */

static char line[4096];
static const char *volatile current = "start";

/* A crash in a case is its result ("CRASH"): the run goes on with the
 * next case (the crashed call's state may be left behind; the line says so). */
static sigjmp_buf crash_jump;
static volatile sig_atomic_t crash_armed;
static void crashed(int sig) {
    if (crash_armed) {
        crash_armed = 0;
        siglongjmp(crash_jump, sig);
    }
    char msg[256];
    int n = snprintf(msg, sizeof msg, "CRASH (signal %d) in %s\n", sig, current);
    if (n > 0) (void)!write(1, msg, (size_t)n);
    _exit(70);
}

/* BAD_POINTERS_TRACE=1 names each case as it starts (stderr). */
static void trace(void) {
    static int on = -1;
    if (on < 0) on = getenv("BAD_POINTERS_TRACE") != NULL;
    if (on) fprintf(stderr, "case: %s\n", current);
}

static void add(const char *label, const char *result);

/* BAD_POINTERS_SKIP=text|text…: cases whose label has one of them are
 * left out (for a run under a shim that hangs or dies in one). */
static int skipped(const char *label) {
    const char *skip = getenv("BAD_POINTERS_SKIP");
    while (skip && *skip) {
        const char *end = strchr(skip, '|');
        size_t n = end ? (size_t)(end - skip) : strlen(skip);
        for (const char *p = label; n && *p; p++)
            if (strncmp(p, skip, n) == 0) {
                add(label, "skipped");
                return 1;
            }
        skip = end ? end + 1 : NULL;
    }
    return 0;
}

static void add(const char *label, const char *result) {
    size_t len = strlen(line);
    snprintf(line + len, sizeof line - len, "%s%s %s", len ? ", " : "", label, result);
}

static const char *err_name(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "?";
}

static void add_result(const char *label, long r, int e) {
    char buf[64];
    if (r == -1) snprintf(buf, sizeof buf, "-1 %s", err_name(e));
    else snprintf(buf, sizeof buf, "%ld", r);
    add(label, buf);
}

/* A libc-style call: -1 and errno, or its result. */
#define TRY(label, call) do { \
        current = (label); \
        trace(); \
        if (skipped(label)) break; \
        if (sigsetjmp(crash_jump, 1)) { add((label), "CRASH"); break; } \
        crash_armed = 1; \
        errno = 0; \
        long r_ = (long)(call); \
        int e_ = errno; \
        crash_armed = 0; \
        add_result((label), r_, e_); \
    } while (0)

/* A call that returns an error number. */
#define TRY_RC(label, call) do { \
        current = (label); \
        trace(); \
        if (skipped(label)) break; \
        if (sigsetjmp(crash_jump, 1)) { add((label), "CRASH"); break; } \
        crash_armed = 1; \
        int rc_ = (call); \
        crash_armed = 0; \
        add((label), rc_ ? err_name(rc_) : "0"); \
    } while (0)

static void group_done(const char *group) {
    printf("%s: %s\n", group, line);
    line[0] = 0;
}

static char label_buf[64][48];
static int label_next;
/* "what NAME", for the bad pointer i. */
static const char *L(const char *what, int i) {
    char *b = label_buf[label_next++ % 64];
    snprintf(b, 48, "%s %s", what, bad_name[i]);
    return b;
}

static void blocking_pair(int type, int sv[2]) {
    CHECK(socketpair(AF_UNIX, type, 0, sv) == 0);
}

/* The lowest free fd number, left free. */
static int lowest_free_fd(void) {
    int fd = dup(0);
    close(fd);
    return fd;
}

/* ---- poll, ppoll, select, pselect ------------------------------------------------ */

static void polls(void) {
    int sv[2];
    blocking_pair(SOCK_STREAM, sv); /* sv[0] has nothing to read: a good call would wait */
    struct pollfd good = {.fd = sv[0], .events = POLLIN};
    for (int i = 0; i < 3; i++) TRY(L("poll", i), poll(bad[i], 1, -1));
    TRY("poll none n 0", poll(bad[2], 0, 1));
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    TRY("poll n over limit", poll(bad[2], (nfds_t)rl.rlim_cur + 1, -1));
    /* The kernel's count is an unsigned int. */
    TRY("poll n 2^32+1", poll(bad[2], ((nfds_t)1 << 32) + 1, -1));
    TRY("poll n 2^32", poll(bad[2], (nfds_t)1 << 32, 1));
    TRY("poll 40 none", poll(bad[2], 40, -1)); /* more than fit on the stack */
    for (int i = 0; i < 3; i++) TRY(L("ppoll", i), ppoll(bad[i], 1, NULL, NULL));
    for (int i = 1; i < 3; i++) TRY(L("ppoll mask", i), ppoll(&good, 1, NULL, bad[i]));
    group_done("poll");

    int n = sv[0] + 1;
    fd_set set;
    for (int i = 1; i < 3; i++) TRY(L("select read set", i), select(n, bad[i], NULL, NULL, NULL));
    for (int i = 1; i < 3; i++) TRY(L("select write set", i), select(n, NULL, bad[i], NULL, NULL));
    for (int i = 1; i < 3; i++) TRY(L("select except set", i), select(n, NULL, NULL, bad[i], NULL));
    /* The kernel reads the set, waits, then cannot write it back. */
    CHECK(write(sv[1], "x", 1) == 1);
    fd_set *ro = readonly_page;
    CHECK(mprotect(ro, 4096, PROT_READ | PROT_WRITE) == 0);
    FD_ZERO(ro);
    FD_SET(sv[0], ro);
    CHECK(mprotect(ro, 4096, PROT_READ) == 0);
    TRY("select read-only set (readable)", select(n, ro, NULL, NULL, NULL));
    for (int i = 1; i < 3; i++) {
        FD_ZERO(&set);
        FD_SET(sv[0], &set);
        TRY(L("pselect mask", i), pselect(n, &set, NULL, NULL, NULL, bad[i]));
    }
    char c;
    CHECK(read(sv[0], &c, 1) == 1);
    for (int i = 1; i < 3; i++) TRY(L("pselect set", i), pselect(n, bad[i], NULL, NULL, NULL, NULL));
    group_done("select");
    close(sv[0]);
    close(sv[1]);
}

/* ---- epoll ------------------------------------------------------------------------ */

static void epolls(void) {
    int sv[2];
    blocking_pair(SOCK_STREAM, sv);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = sv[0]};
    for (int i = 0; i < 3; i++) TRY(L("ctl", i), epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], bad[i]));
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) == 0);
    /* Nothing ready: the mask is read before the wait. */
    for (int i = 1; i < 3; i++) TRY(L("pwait mask", i), epoll_pwait(ep, &ev, 1, -1, bad[i]));
    TRY("wait max 0", epoll_wait(ep, bad[2], 0, -1));
    /* An event ready: the kernel cannot write it. */
    CHECK(write(sv[1], "x", 1) == 1);
    for (int i = 0; i < 3; i++) TRY(L("wait ready", i), epoll_wait(ep, bad[i], 1, -1));
    for (int i = 0; i < 3; i++) TRY(L("pwait ready", i), epoll_pwait(ep, bad[i], 1, -1, NULL));
    TRY("wait ready read-only", epoll_wait(ep, readonly_page, 1, -1));
    TRY("wait ready", epoll_wait(ep, &ev, 1, -1));
    group_done("epoll");
    close(ep);
    close(sv[0]);
    close(sv[1]);
}

/* ---- sleeps ----------------------------------------------------------------------- */

static volatile sig_atomic_t stop_poking;
static void on_usr1(int sig) { (void)sig; }

static void *poke(void *arg) {
    pthread_t target = *(pthread_t *)arg;
    while (!stop_poking) {
        pthread_kill(target, SIGUSR1);
        usleep(1000);
    }
    return NULL;
}

/* A long sleep that a handler interrupts: the kernel writes the time left
 * to `rem`, and says EFAULT when it cannot. */
static void interrupted_sleeps(void) {
    pthread_t self = pthread_self(), t;
    stop_poking = 0;
    CHECK_RC(pthread_create(&t, NULL, poke, &self), 0);
    struct timespec ten = {10, 0};
    for (int i = 1; i < 3; i++) TRY(L("nanosleep interrupted rem", i), nanosleep(&ten, bad[i]));
    TRY("nanosleep interrupted read-only rem", nanosleep(&ten, readonly_page));
    for (int i = 1; i < 3; i++)
        TRY_RC(L("clock_nanosleep interrupted rem", i), clock_nanosleep(CLOCK_MONOTONIC, 0, &ten, bad[i]));
    for (int i = 1; i < 3; i++)
        TRY(L("syscall nanosleep interrupted rem", i), syscall(SYS_nanosleep, &ten, bad[i]));
    stop_poking = 1;
    CHECK_RC(pthread_join(t, NULL), 0);
}

static void sleeps(void) {
    for (int i = 0; i < 3; i++) TRY(L("nanosleep", i), nanosleep(bad[i], NULL));
    for (int i = 0; i < 3; i++) TRY_RC(L("clock_nanosleep", i), clock_nanosleep(CLOCK_MONOTONIC, 0, bad[i], NULL));
    for (int i = 0; i < 3; i++)
        TRY_RC(L("clock_nanosleep abs", i), clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, bad[i], NULL));
    interrupted_sleeps();
    group_done("sleep");
}

/* ---- sockets and pipes ------------------------------------------------------------- */

static void sockets(void) {
    int before = lowest_free_fd();
    for (int i = 0; i < 3; i++) TRY(L("socketpair", i), socketpair(AF_UNIX, SOCK_STREAM, 0, bad[i]));
    for (int i = 0; i < 3; i++) TRY(L("pipe", i), pipe(bad[i]));
    for (int i = 0; i < 3; i++) TRY(L("pipe2", i), pipe2(bad[i], O_CLOEXEC));
    add("no fd left open", lowest_free_fd() == before ? "yes" : "no");

    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "green-bad-pointers-%d", (int)getpid());
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1));
    CHECK(bind(l, (struct sockaddr *)&a, alen) == 0);
    CHECK(listen(l, 16) == 0);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    for (int i = 0; i < 3; i++) TRY(L("connect", i), connect(c, bad[i], alen));
    /* A connection queued: accept takes it, then cannot write the address. */
    int clients[8];
    for (int k = 0; k < 6; k++) {
        clients[k] = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(connect(clients[k], (struct sockaddr *)&a, alen) == 0);
    }
    struct sockaddr_un peer;
    socklen_t plen = sizeof peer;
    for (int i = 1; i < 3; i++) {
        plen = sizeof peer;
        TRY(L("accept addr", i), accept(l, bad[i], &plen));
    }
    for (int i = 1; i < 3; i++) TRY(L("accept addrlen", i), accept(l, (struct sockaddr *)&peer, bad[i]));
    for (int i = 1; i < 3; i++) TRY(L("accept4 addrlen", i), accept4(l, (struct sockaddr *)&peer, bad[i], SOCK_CLOEXEC));
    for (int k = 0; k < 6; k++) close(clients[k]);
    close(c);
    close(l);

    int sv[2];
    blocking_pair(SOCK_STREAM, sv);
    for (int i = 1; i < 3; i++) TRY(L("ioctl FIONBIO", i), ioctl(sv[0], FIONBIO, bad[i]));
    for (int i = 1; i < 3; i++) TRY(L("ioctl FIONREAD", i), ioctl(sv[0], FIONREAD, bad[i]));
    for (int i = 0; i < 3; i++)
        TRY(L("setsockopt SO_RCVTIMEO", i), setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, bad[i], sizeof(struct timeval)));
    for (int i = 1; i < 3; i++) TRY(L("fcntl F_GETLK", i), fcntl(sv[0], F_GETLK, bad[i]));
    /* Still blocking after the failed FIONBIO: a read with nothing queued would wait. */
    add("still blocking", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) ? "no" : "yes");
    close(sv[0]);
    close(sv[1]);
    group_done("sockets");
}

/* ---- recvmmsg, sendmmsg -------------------------------------------------------------- */

static void message_batches(void) {
    int sv[2];
    blocking_pair(SOCK_DGRAM, sv);
    char buf[16];
    struct iovec iov = {buf, sizeof buf};
    struct mmsghdr m[2];
    memset(m, 0, sizeof m);
    m[0].msg_hdr.msg_iov = &iov;
    m[0].msg_hdr.msg_iovlen = 1;
    /* Nothing queued: the first msghdr is read before the wait. */
    for (int i = 0; i < 3; i++) TRY(L("recvmmsg vec", i), recvmmsg(sv[0], bad[i], 1, 0, NULL));
    for (int i = 1; i < 3; i++) TRY(L("recvmmsg timeout", i), recvmmsg(sv[0], m, 1, 0, bad[i]));
    for (int i = 0; i < 3; i++) TRY(L("sendmmsg vec", i), sendmmsg(sv[1], bad[i], 1, 0));
    /* The second entry is bad, one datagram queued: the first is the answer. */
    CHECK(send(sv[1], "abc", 3, 0) == 3);
    struct mmsghdr *edge = (struct mmsghdr *)((char *)bad[2] - sizeof *edge);
    memcpy(edge, &m[0], sizeof *edge);
    TRY("recvmmsg second entry none", recvmmsg(sv[0], edge, 2, 0, NULL));
    TRY("then recv", recv(sv[0], buf, sizeof buf, MSG_DONTWAIT));
    group_done("mmsg");
    close(sv[0]);
    close(sv[1]);
}

/* ---- sendfile, splice ---------------------------------------------------------------- */

static void transfers(void) {
    char path[] = "/tmp/green-bad-pointers-XXXXXX";
    int file = mkstemp(path);
    CHECK(file >= 0);
    unlink(path);
    CHECK(write(file, "0123456789", 10) == 10);
    int sv[2];
    blocking_pair(SOCK_STREAM, sv);
    for (int i = 1; i < 3; i++) TRY(L("sendfile offset", i), sendfile(sv[1], file, bad[i], 5));
    /* Into a full blocking pipe: the kernel reads the offset first. */
    int p[2];
    CHECK(pipe(p) == 0);
    int fl = fcntl(p[1], F_GETFL);
    fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
    static char chunk[4096];
    while (write(p[1], chunk, sizeof chunk) > 0) {}
    fcntl(p[1], F_SETFL, fl);
    for (int i = 1; i < 3; i++) TRY(L("sendfile into full pipe offset", i), sendfile(p[1], file, bad[i], 5));
    /* From a socket with nothing queued into an empty pipe. */
    int q[2];
    CHECK(pipe(q) == 0);
    for (int i = 1; i < 3; i++) TRY(L("splice in offset", i), splice(sv[0], bad[i], q[1], NULL, 5, 0));
    for (int i = 1; i < 3; i++) TRY(L("splice out offset", i), splice(q[0], NULL, file, bad[i], 5, 0));
    group_done("transfers");
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    close(sv[0]);
    close(sv[1]);
    close(file);
}

/* ---- sigwait, sigwaitinfo, sigtimedwait ----------------------------------------------- */

static void signal_waits(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    struct timespec ten = {10, 0};
    for (int i = 0; i < 3; i++) TRY_RC(L("sigwait set", i), sigwait(bad[i], &(int){0}));
    for (int i = 0; i < 3; i++) TRY(L("sigwaitinfo set", i), sigwaitinfo(bad[i], NULL));
    for (int i = 0; i < 3; i++) TRY(L("sigtimedwait set", i), sigtimedwait(bad[i], NULL, &ten));
    for (int i = 1; i < 3; i++) TRY(L("sigtimedwait timeout", i), sigtimedwait(&set, NULL, bad[i]));
    /* One pending: the kernel takes it, then cannot write the siginfo.
     * (Not one sent to the thread with pthread_kill: under `green run` a
     * sigwaitinfo for that waits for ever, good siginfo or not.) */
    for (int i = 1; i < 3; i++) {
        kill(getpid(), SIGUSR2);
        TRY(L("sigtimedwait info (to the process)", i), sigtimedwait(&set, bad[i], &ten));
    }
    sigset_t pending;
    sigpending(&pending);
    add("taken", sigismember(&pending, SIGUSR2) ? "no" : "yes");
    /* The mask calls' out-parameters, and sigsuspend's mask (glibc reads a
     * new mask itself: a bad one crashes natively too, so not tried). */
    for (int i = 1; i < 3; i++) TRY_RC(L("pthread_sigmask old", i), pthread_sigmask(SIG_BLOCK, NULL, bad[i]));
    for (int i = 1; i < 3; i++) TRY(L("sigprocmask old", i), sigprocmask(SIG_BLOCK, NULL, bad[i]));
    /* The kernel changes the mask, then fails to write the old one. */
    sigset_t winch, now;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    TRY_RC("pthread_sigmask block, old none", pthread_sigmask(SIG_BLOCK, &winch, bad[2]));
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    add("then blocked", sigismember(&now, SIGWINCH) ? "yes" : "no");
    pthread_sigmask(SIG_UNBLOCK, &winch, NULL);
    for (int i = 1; i < 3; i++) TRY(L("sigpending", i), sigpending(bad[i]));
    for (int i = 1; i < 3; i++) TRY(L("sigsuspend mask", i), sigsuspend(bad[i]));
    group_done("sigwait");
}

/* Writes a byte after 20 ms (a select's wait ends at it). */
static void *write_later(void *fd) {
    usleep(20 * 1000);
    CHECK(write(*(int *)fd, "x", 1) == 1);
    return NULL;
}

/* ---- syscall() ------------------------------------------------------------------------ */

static void raw_calls(void) {
    int sv[2];
    blocking_pair(SOCK_STREAM, sv);
    struct pollfd good = {.fd = sv[0], .events = POLLIN};
    sigset_t mask;
    sigemptyset(&mask);
    for (int i = 1; i < 3; i++) TRY(L("ppoll timeout", i), syscall(SYS_ppoll, &good, 1, bad[i], NULL, 8));
    TRY("ppoll mask size 7", syscall(SYS_ppoll, &good, 1, NULL, &mask, 7));
    fd_set set;
    FD_ZERO(&set);
    FD_SET(sv[0], &set);
    struct { const sigset_t *set; size_t size; } pack = {&mask, 8}, wrong = {&mask, 7};
    for (int i = 1; i < 3; i++) TRY(L("pselect6 mask pack", i), syscall(SYS_pselect6, sv[0] + 1, &set, NULL, NULL, NULL, bad[i]));
    for (int i = 1; i < 3; i++) TRY(L("pselect6 timeout", i), syscall(SYS_pselect6, sv[0] + 1, &set, NULL, NULL, bad[i], &pack));
    TRY("pselect6 mask size 7", syscall(SYS_pselect6, sv[0] + 1, &set, NULL, NULL, NULL, &wrong));
#ifdef SYS_select
    for (int i = 1; i < 3; i++) TRY(L("select timeout", i), syscall(SYS_select, sv[0] + 1, &set, NULL, NULL, bad[i]));
#else
    add("select timeout 1", "-1 EFAULT");
    add("select timeout none", "-1 EFAULT");
#endif
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) == 0);
    for (int i = 1; i < 3; i++) TRY(L("epoll_pwait mask", i), syscall(SYS_epoll_pwait, ep, &ev, 1, -1, bad[i], 8));
    TRY("epoll_pwait mask size 7", syscall(SYS_epoll_pwait, ep, &ev, 1, -1, &mask, 7));
    close(ep);
    for (int i = 0; i < 3; i++) TRY(L("nanosleep", i), syscall(SYS_nanosleep, bad[i], NULL));
    for (int i = 0; i < 3; i++) TRY(L("clock_nanosleep", i), syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, bad[i], NULL));
    /* futex: a word that holds the expected value, a bad timeout. */
    static uint32_t word;
    for (int i = 1; i < 3; i++)
        TRY(L("futex wait timeout", i), syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, bad[i], NULL, 0));
    for (int i = 1; i < 3; i++)
        TRY(L("futex wait_bitset timeout", i),
            syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, bad[i], NULL, FUTEX_BITSET_MATCH_ANY));
    TRY("futex wait word none", syscall(SYS_futex, bad[2], FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0));
    TRY("futex wait word NULL", syscall(SYS_futex, bad[0], FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0));
    TRY("futex lock_pi word none", syscall(SYS_futex, bad[2], FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0));
    TRY("futex trylock_pi word none", syscall(SYS_futex, bad[2], FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0));
    TRY("futex unlock_pi word none", syscall(SYS_futex, bad[2], FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0));
    static uint32_t pi_word;
    for (int i = 1; i < 3; i++)
        TRY(L("futex lock_pi timeout", i), syscall(SYS_futex, &pi_word, FUTEX_LOCK_PI_PRIVATE, 0, bad[i], NULL, 0));
    /* The time left, written back as the kernel writes it: not for a
     * timeout in read-only memory (ignored, no EFAULT), 0 after it ran out. */
    struct pollfd quiet = {.fd = sv[0], .events = POLLIN};
    struct timeval *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *ro = (struct timeval){0, 20 * 1000};
    mprotect(ro, 4096, PROT_READ);
#ifdef SYS_select
    TRY("select read-only timeout", syscall(SYS_select, 0, NULL, NULL, NULL, ro));
#endif
    struct timespec left = {0, 20 * 1000000};
    TRY("ppoll ran out", syscall(SYS_ppoll, &quiet, 1, &left, NULL, 8));
    add("time left 0", left.tv_sec == 0 && left.tv_nsec == 0 ? "yes" : "no");
    left = (struct timespec){0, 20 * 1000000};
    TRY("pselect6 ran out", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &left, NULL));
    add("time left 0", left.tv_sec == 0 && left.tv_nsec == 0 ? "yes" : "no");
    munmap(ro, 4096);
    /* A count past FD_SETSIZE (select(getdtablesize(), …) under a raised
     * limit) is the kernel's to cut: the wait still ends at the write. */
    static fd_set wide[4]; /* room for 4096 fds */
    int later[2];
    CHECK(pipe(later) == 0);
    FD_SET(later[0], &wide[0]);
    pthread_t writer;
    CHECK_RC(pthread_create(&writer, NULL, write_later, &later[1]), 0);
    struct timeval five = {5, 0};
    TRY("select count 4096", select(4096, &wide[0], NULL, NULL, &five));
    CHECK_RC(pthread_join(writer, NULL), 0);
    add("pipe set", FD_ISSET(later[0], &wide[0]) ? "yes" : "no");
    close(later[0]);
    close(later[1]);
    /* select takes a million microseconds or more as seconds, as glibc's. */
    struct timeval over = {0, 1000001};
    TRY("select 1000001 us", select(0, NULL, NULL, NULL, &over));
    group_done("syscall");
    close(sv[0]);
    close(sv[1]);
}

/* ---- wait4 -------------------------------------------------------------------------- */

static void waits(void) {
    for (int i = 1; i < 3; i++) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        TRY(L("waitpid status", i), waitpid(pid, bad[i], 0) == pid ? 0 : -1);
        add("reaped", waitpid(pid, NULL, WNOHANG) == -1 && errno == ECHILD ? "yes" : "no");
    }
    group_done("wait");
}

/* ---- read, write, their vectors, messages (io.c) -------------------------------------- */

static void io(void) {
    int sv[2];
    blocking_pair(SOCK_STREAM, sv);
    char buf[8];
    struct iovec good = {buf, sizeof buf};
    volatile int huge_count = 1 << 20; /* more than UIO_MAXIOV */
    /* Nothing queued: the vector or msghdr is read before the wait. */
    for (int i = 0; i < 3; i++) TRY(L("readv empty", i), readv(sv[0], bad[i], 1));
    TRY("readv count 2^20", readv(sv[0], &good, huge_count));
    for (int i = 0; i < 3; i++) TRY(L("recvmsg empty", i), recvmsg(sv[0], bad[i], 0));
    struct msghdr badiov = {.msg_iov = bad[2], .msg_iovlen = 1};
    TRY("recvmsg empty msg_iov none", recvmsg(sv[0], &badiov, 0));
    /* Something queued. */
    CHECK(write(sv[1], "abc", 3) == 3);
    for (int i = 0; i < 3; i++) TRY(L("readv queued", i), readv(sv[0], bad[i], 1));
    for (int i = 0; i < 3; i++) TRY(L("recvmsg queued", i), recvmsg(sv[0], bad[i], 0));
    TRY("recvmsg queued msg_iov none", recvmsg(sv[0], &badiov, 0));
    for (int i = 1; i < 3; i++) TRY(L("read queued buf", i), read(sv[0], bad[i], sizeof buf));
    TRY("read queued", read(sv[0], buf, sizeof buf));
    /* Writes. */
    for (int i = 0; i < 3; i++) TRY(L("writev", i), writev(sv[1], bad[i], 1));
    TRY("writev count 2^20", writev(sv[1], &good, huge_count));
    for (int i = 0; i < 3; i++) TRY(L("sendmsg", i), sendmsg(sv[1], bad[i], 0));
    TRY("sendmsg msg_iov none", sendmsg(sv[1], &badiov, 0));
    for (int i = 1; i < 3; i++) TRY(L("write buf", i), write(sv[1], bad[i], 4));
    /* The second buffer is bad: the first goes out. */
    struct iovec two[2] = {{"abc", 3}, {bad[2], 4}};
    TRY("writev second base none", writev(sv[1], two, 2));
    struct msghdr two_mh = {.msg_iov = two, .msg_iovlen = 2};
    TRY("sendmsg second base none", sendmsg(sv[1], &two_mh, 0));
    TRY("queued", recv(sv[0], buf, sizeof buf, MSG_DONTWAIT));
    /* A first buffer longer than one of the kernel's chunks: it sends the
     * chunks before the bad one and returns their count. */
    static char big[81000], back[81000];
    for (size_t k = 0; k < sizeof big; k++) big[k] = (char)(k * 7);
    struct iovec long_two[2] = {{big, sizeof big}, {bad[2], 4}};
    for (int how = 0; how < 2; how++) {
        struct msghdr long_mh = {.msg_iov = long_two, .msg_iovlen = 2};
        current = how ? "sendmsg long then none" : "writev long then none";
        trace();
        ssize_t r = how ? sendmsg(sv[1], &long_mh, 0) : writev(sv[1], long_two, 2);
        int e = errno;
        ssize_t got = recv(sv[0], back, sizeof back, MSG_DONTWAIT);
        const char *what = r < 0 ? err_name(e) : r == 0 ? "0" : (size_t)r < sizeof big ? "part" : "all";
        char result[64];
        snprintf(result, sizeof result, "%s (read back the same %s)", what,
                 (r > 0 && got == r && memcmp(back, big, (size_t)r) == 0) || (r <= 0 && got < 0) ? "yes" : "no");
        add(current, result);
    }
    group_done("io");
    close(sv[0]);
    close(sv[1]);
}

/* ---- bad or empty input where a call would wait (io.c) ---------------------------------
 * The kernel answers at once: a full pipe's writev with a bad array, count
 * or length, and a write of nothing; an empty readv on a datagram socket
 * returns 0 and leaves the datagram queued. */
static void io_edges(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    static char fill[4096];
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    while (write(p[1], fill, sizeof fill) > 0) {}
    fcntl(p[1], F_SETFL, 0); /* full and blocking */
    struct iovec one = {fill, 1}, endless = {fill, SIZE_MAX}, none = {fill, 0};
    volatile int many = 2000; /* more than UIO_MAXIOV */
    for (int i = 0; i < 3; i++) TRY(L("full pipe writev", i), writev(p[1], bad[i], 1));
    TRY("full pipe writev count 2000", writev(p[1], &one, many));
    TRY("full pipe writev length SIZE_MAX", writev(p[1], &endless, 1));
    TRY("full pipe write of 0", write(p[1], fill, 0));
    TRY("full pipe writev of 0", writev(p[1], &none, 1));
    int empty[2];
    CHECK(pipe(empty) == 0);
    TRY("empty pipe readv length SIZE_MAX", readv(empty[0], &endless, 1));
    close(empty[0]);
    close(empty[1]);
    close(p[0]);
    close(p[1]);
    int d[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0);
    CHECK(send(d[1], "hello", 5, 0) == 5);
    TRY("datagram readv of 0", readv(d[0], &none, 1));
    char back[8];
    TRY("datagram still queued", recv(d[0], back, sizeof back, MSG_DONTWAIT));
    close(d[0]);
    close(d[1]);
    group_done("io edges");
}

static void *all_checks(void *arg) {
    (void)arg;
    polls();
    epolls();
    sleeps();
    sockets();
    message_batches();
    transfers();
    signal_waits();
    raw_calls();
    waits();
    io();
    io_edges();
    return NULL;
}

int main(void) {
    program_start(60);
    bad[0] = NULL;
    bad[1] = (void *)1;
    char *pages = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(pages != MAP_FAILED);
    CHECK(mprotect(pages + 4096, 4096, PROT_NONE) == 0);
    bad[2] = pages + 4096;
    readonly_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mprotect(readonly_page, 4096, PROT_READ) == 0);
    set_handler(SIGSEGV, crashed, 0);
    set_handler(SIGBUS, crashed, 0);
    set_handler(SIGUSR1, on_usr1, 0);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL); /* the checks' thread inherits it */
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, all_checks, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    return program_end("bad_pointers");
}
