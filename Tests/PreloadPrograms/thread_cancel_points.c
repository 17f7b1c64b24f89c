/* thread_cancel_points.c — more of pthread_cancel, as glibc does it:
 *  - more cancellation points: usleep, clock_nanosleep, select (also with
 *    nfds above 64), poll of 40 fds, epoll_wait, recv, write to a full pipe,
 *    sigwait, sigsuspend, pause, waitpid, sem_timedwait,
 *    pthread_cond_clockwait, pthread_timedjoin_np: the thread's cleanup
 *    handler runs and pthread_join returns PTHREAD_CANCELED; and the process
 *    has the same open fds afterwards (no fd of a wait left behind);
 *  - calls that are no cancellation points: a futex wait through syscall()
 *    and pthread_rwlock_wrlock are not ended by the cancel; the thread acts
 *    on it at its next cancellation point;
 *  - PTHREAD_CANCEL_ASYNCHRONOUS: a thread in a loop of sched_yield (no
 *    cancellation point) is cancelled;
 *  - pthread_cancel(pthread_self()) acts at the next cancellation point, or
 *    at once when the type becomes asynchronous;
 *  - sem_wait acts on a pending cancellation even when it could take a token
 *    (and takes none);
 *  - a thread of the process that is not the canceller's kind (a SIGEV_THREAD
 *    timer's thread) cancels a thread parked in read and in
 *    pthread_cond_wait;
 *  - a cleanup handler that sleeps is not cancelled again.
 * Every line printed is deterministic. */
#include "check.h"
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/futex.h>

static char events[512];
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

static void record(const char *what) {
    pthread_mutex_lock(&events_lock);
    if (events[0]) strncat(events, " ", sizeof events - strlen(events) - 1);
    strncat(events, what, sizeof events - strlen(events) - 1);
    pthread_mutex_unlock(&events_lock);
}

static void cleanup(void *what) { record((const char *)what); }

static volatile int ready;
static void set_ready(void) { __atomic_store_n(&ready, 1, __ATOMIC_SEQ_CST); }
static void wait_ready(void) {
    for (int i = 0; i < 10000 && !__atomic_load_n(&ready, __ATOMIC_SEQ_CST); i++) sleep_ms(1);
    CHECK(__atomic_load_n(&ready, __ATOMIC_SEQ_CST));
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* ---- more cancellation points ------------------------------------------------------ */

enum point {
    P_USLEEP, P_CLOCK_NANOSLEEP, P_SELECT, P_SELECT_HIGH_FD, P_POLL_40, P_EPOLL_WAIT, P_RECV, P_WRITE_FULL_PIPE,
    P_SIGWAIT, P_SIGSUSPEND, P_PAUSE, P_WAITPID, P_SEM_TIMEDWAIT, P_COND_CLOCKWAIT, P_TIMEDJOIN, P_COUNT
};
static const char *point_names[P_COUNT] = {
    "usleep", "clock_nanosleep", "select", "select of fd 100", "poll of 40 fds", "epoll_wait", "recv",
    "write to a full pipe", "sigwait", "sigsuspend", "pause", "waitpid", "sem_timedwait", "pthread_cond_clockwait",
    "pthread_timedjoin_np"};

static int quiet_pipe[2];  /* never written */
static int high_fd = 100;  /* a dup of quiet_pipe[0] */
static int full_pipe[2];   /* its buffer full */
static int sockets[2];     /* nothing sent */
static int epfd;
static pid_t child;        /* sleeps until killed */
static sem_t empty_sem;
static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_t sleeper;
static volatile int sleeper_release;

static void *sleeps_until_released(void *arg) {
    while (!__atomic_load_n(&sleeper_release, __ATOMIC_SEQ_CST)) sleep_ms(2);
    return arg;
}

static void unlock_cond_lock(void *arg) {
    (void)arg;
    record("unlock");
    pthread_mutex_unlock(&cond_lock);
}

static void *cancelled_in(void *arg) {
    enum point p = (enum point)(intptr_t)arg;
    pthread_cleanup_push(cleanup, "cleanup");
    record("blocking");
    struct timespec long_time = {600, 0};
    char byte = 0;
    switch (p) {
    case P_USLEEP:
        set_ready();
        for (;;) usleep(900000);
    case P_CLOCK_NANOSLEEP:
        set_ready();
        clock_nanosleep(CLOCK_MONOTONIC, 0, &long_time, NULL);
        break;
    case P_SELECT:
    case P_SELECT_HIGH_FD: {
        int fd = p == P_SELECT ? quiet_pipe[0] : high_fd;
        fd_set r;
        FD_ZERO(&r);
        FD_SET(fd, &r);
        set_ready();
        select(fd + 1, &r, NULL, NULL, NULL);
        break;
    }
    case P_POLL_40: {
        struct pollfd fds[40];
        for (int i = 0; i < 40; i++) fds[i] = (struct pollfd){.fd = quiet_pipe[0], .events = POLLIN};
        set_ready();
        poll(fds, 40, -1);
        break;
    }
    case P_EPOLL_WAIT: {
        struct epoll_event ev;
        set_ready();
        epoll_wait(epfd, &ev, 1, -1);
        break;
    }
    case P_RECV:
        set_ready();
        (void)!recv(sockets[0], &byte, 1, 0);
        break;
    case P_WRITE_FULL_PIPE:
        set_ready();
        (void)!write(full_pipe[1], &byte, 1);
        break;
    case P_SIGWAIT: {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        int sig;
        set_ready();
        sigwait(&set, &sig);
        break;
    }
    case P_SIGSUSPEND: {
        sigset_t mask;
        pthread_sigmask(SIG_BLOCK, NULL, &mask);
        set_ready();
        sigsuspend(&mask);
        break;
    }
    case P_PAUSE:
        set_ready();
        pause();
        break;
    case P_WAITPID: {
        int status;
        set_ready();
        waitpid(child, &status, 0);
        break;
    }
    case P_SEM_TIMEDWAIT: {
        struct timespec deadline = deadline_after(CLOCK_REALTIME, 600000);
        set_ready();
        sem_timedwait(&empty_sem, &deadline);
        break;
    }
    case P_COND_CLOCKWAIT:
        pthread_mutex_lock(&cond_lock);
        pthread_cleanup_push(unlock_cond_lock, NULL);
        set_ready();
        for (;;) {
            struct timespec deadline = deadline_after(CLOCK_MONOTONIC, 600000);
            pthread_cond_clockwait(&cond, &cond_lock, CLOCK_MONOTONIC, &deadline);
        }
        pthread_cleanup_pop(1);
        break;
    case P_TIMEDJOIN: {
        struct timespec deadline = deadline_after(CLOCK_REALTIME, 600000);
        set_ready();
        pthread_timedjoin_np(sleeper, NULL, &deadline);
        break;
    }
    default:
        break;
    }
    record("FAIL-returned");
    pthread_cleanup_pop(0);
    return NULL;
}

static void cancel_in(enum point p) {
    events[0] = 0;
    ready = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, cancelled_in, (void *)(intptr_t)p), 0);
    wait_ready();
    sleep_ms(20);
    int rc = pthread_cancel(t);
    CHECK_RC(rc, 0);
    if (rc != 0) {
        printf("cancelled in %s: pthread_cancel returned %d (%s); thread left behind\n", point_names[p], rc,
               strerror(rc));
        return;
    }
    void *ret = NULL;
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    const char *want = p == P_COND_CLOCKWAIT ? "blocking unlock cleanup" : "blocking cleanup";
    if (strcmp(events, want) != 0) {
        printf("FAIL cancelled in %s: events \"%s\", expected \"%s\"\n", point_names[p], events, want);
        check_failures++;
    }
    printf("cancelled in %s: %s, join %s\n", point_names[p], events,
           ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "something else");
}

static void more_cancellation_points(void) {
    CHECK(pipe(quiet_pipe) == 0);
    CHECK(dup2(quiet_pipe[0], high_fd) == high_fd);
    CHECK(pipe(full_pipe) == 0);
    int flags = fcntl(full_pipe[1], F_GETFL);
    fcntl(full_pipe[1], F_SETFL, flags | O_NONBLOCK);
    char chunk[4096] = {0};
    while (write(full_pipe[1], chunk, sizeof chunk) > 0) {}
    while (write(full_pipe[1], chunk, 1) > 0) {}
    fcntl(full_pipe[1], F_SETFL, flags);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) == 0);
    epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, quiet_pipe[0], &ev) == 0);
    sem_init(&empty_sem, 0, 0);
    child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    CHECK_RC(pthread_create(&sleeper, NULL, sleeps_until_released, NULL), 0);

    int fds_before = open_fds();
    for (int p = 0; p < P_COUNT; p++) cancel_in((enum point)p);
    int fds_after = open_fds();
    CHECK(fds_after == fds_before);
    printf("open fds after the cancellations: %s\n", fds_after == fds_before ? "as before" : "FAIL: more");

    kill(child, SIGKILL);
    CHECK(waitpid(child, NULL, 0) == child);
    __atomic_store_n(&sleeper_release, 1, __ATOMIC_SEQ_CST);
    CHECK_RC(pthread_join(sleeper, NULL), 0); /* still joinable: the cancelled joiner let go */
    close(quiet_pipe[0]);
    close(quiet_pipe[1]);
    close(high_fd);
    close(full_pipe[0]);
    close(full_pipe[1]);
    close(sockets[0]);
    close(sockets[1]);
    close(epfd);
}

/* ---- no cancellation points ---------------------------------------------------------- */

static uint32_t futex_word;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static volatile int cancel_sent;

static void *waits_in_futex(void *arg) {
    pthread_cleanup_push(cleanup, "cleanup");
    set_ready();
    while (__atomic_load_n(&futex_word, __ATOMIC_SEQ_CST) == 0)
        syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    record("woken");
    pthread_testcancel();
    record("FAIL-after-testcancel");
    pthread_cleanup_pop(0);
    return arg;
}

static void *waits_in_wrlock(void *arg) {
    pthread_cleanup_push(cleanup, "cleanup");
    set_ready();
    pthread_rwlock_wrlock(&rwlock);
    record("locked");
    pthread_rwlock_unlock(&rwlock);
    pthread_testcancel();
    record("FAIL-after-testcancel");
    pthread_cleanup_pop(0);
    return arg;
}

static void not_cancellation_points(void) {
    events[0] = 0;
    ready = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, waits_in_futex, NULL), 0);
    wait_ready();
    sleep_ms(20);
    CHECK_RC(pthread_cancel(t), 0);
    sleep_ms(30);
    CHECK(events[0] == 0); /* still waiting */
    __atomic_store_n(&futex_word, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    void *ret = NULL;
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    CHECK(strcmp(events, "woken cleanup") == 0);
    printf("a futex wait through syscall() is no cancellation point: %s\n", events);

    events[0] = 0;
    ready = 0;
    pthread_rwlock_rdlock(&rwlock);
    CHECK_RC(pthread_create(&t, NULL, waits_in_wrlock, NULL), 0);
    wait_ready();
    sleep_ms(20);
    CHECK_RC(pthread_cancel(t), 0);
    sleep_ms(30);
    CHECK(events[0] == 0);
    pthread_rwlock_unlock(&rwlock);
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    CHECK(strcmp(events, "locked cleanup") == 0);
    printf("pthread_rwlock_wrlock is no cancellation point: %s\n", events);
}

/* ---- asynchronous type, self-cancel, sem_wait with a token ------------------------------------ */

static void *yields_asynchronously(void *arg) {
    pthread_cleanup_push(cleanup, "cleanup");
    CHECK_RC(pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL), 0);
    record("async");
    set_ready();
    for (;;) sched_yield();
    pthread_cleanup_pop(0);
    return arg;
}

static void *cancels_itself(void *arg) {
    int asynchronous = (int)(intptr_t)arg;
    pthread_cleanup_push(cleanup, "cleanup");
    CHECK_RC(pthread_cancel(pthread_self()), 0);
    record("cancel-sent");
    if (asynchronous) pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    else usleep(1000);
    record("FAIL-returned");
    pthread_cleanup_pop(0);
    return NULL;
}

static sem_t token_sem;

static void *sem_wait_with_a_token(void *arg) {
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_cleanup_push(cleanup, "cleanup");
    set_ready();
    while (!__atomic_load_n(&cancel_sent, __ATOMIC_SEQ_CST)) sleep_ms(1);
    sem_post(&token_sem);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    record("enabled");
    sem_wait(&token_sem);
    record("FAIL-returned");
    pthread_cleanup_pop(0);
    return arg;
}

static void run_to_cancel(const char *what, void *(*body)(void *), void *arg, int cancel, const char *want) {
    events[0] = 0;
    ready = 0;
    cancel_sent = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, body, arg), 0);
    if (cancel) {
        wait_ready();
        sleep_ms(10);
        CHECK_RC(pthread_cancel(t), 0);
        __atomic_store_n(&cancel_sent, 1, __ATOMIC_SEQ_CST);
    }
    void *ret = NULL;
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    if (strcmp(events, want) != 0) {
        printf("FAIL %s: events \"%s\", expected \"%s\"\n", what, events, want);
        check_failures++;
    }
    printf("%s: %s\n", what, events);
}

/* ---- a cancel from a thread the program did not make: a SIGEV_THREAD timer's ----------------------- */

static pthread_t timer_target;
static volatile int timer_rc = -1;

static void cancel_from_timer(union sigval v) {
    (void)v;
    __atomic_store_n(&timer_rc, pthread_cancel(timer_target), __ATOMIC_SEQ_CST);
}

static void *blocks_in_read(void *arg) {
    pthread_cleanup_push(cleanup, "cleanup");
    record("blocking");
    char byte;
    set_ready();
    (void)!read(quiet_pipe[0], &byte, 1);
    record("FAIL-returned");
    pthread_cleanup_pop(0);
    return arg;
}

static void *blocks_in_cond_wait(void *arg) {
    pthread_cleanup_push(cleanup, "cleanup");
    record("blocking");
    pthread_mutex_lock(&cond_lock);
    pthread_cleanup_push(unlock_cond_lock, NULL);
    set_ready();
    for (;;) pthread_cond_wait(&cond, &cond_lock);
    pthread_cleanup_pop(1);
    pthread_cleanup_pop(0);
    return arg;
}

static void cancelled_by_a_timer_thread(const char *what, void *(*body)(void *), const char *want) {
    events[0] = 0;
    ready = 0;
    timer_rc = -1;
    CHECK_RC(pthread_create(&timer_target, NULL, body, NULL), 0);
    wait_ready();
    sleep_ms(10);
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = cancel_from_timer};
    timer_t timer;
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0);
    struct itimerspec its = {.it_value = {0, 10 * 1000000}};
    CHECK(timer_settime(timer, 0, &its, NULL) == 0);
    void *ret = NULL;
    CHECK_RC(pthread_join(timer_target, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    for (int i = 0; i < 1000 && __atomic_load_n(&timer_rc, __ATOMIC_SEQ_CST) == -1; i++) sleep_ms(1);
    CHECK(timer_rc == 0);
    timer_delete(timer);
    if (strcmp(events, want) != 0) {
        printf("FAIL %s: events \"%s\", expected \"%s\"\n", what, events, want);
        check_failures++;
    }
    printf("%s: %s\n", what, events);
}

/* ---- a cleanup handler that sleeps --------------------------------------------------------------- */

static void sleeping_cleanup(void *arg) {
    (void)arg;
    usleep(5000); /* a cancellation point, but the thread is exiting: it sleeps */
    record("cleanup-slept");
}

static void *sleeps_in_cleanup(void *arg) {
    pthread_cleanup_push(sleeping_cleanup, NULL);
    record("blocking");
    set_ready();
    for (;;) usleep(900000);
    pthread_cleanup_pop(0);
    return arg;
}

int main(void) {
    program_start(60);
    more_cancellation_points();
    not_cancellation_points();
    run_to_cancel("asynchronous cancel type, in a loop of sched_yield", yields_asynchronously, NULL, 1,
                  "async cleanup");
    run_to_cancel("pthread_cancel(pthread_self()), then usleep", cancels_itself, (void *)0, 0,
                  "cancel-sent cleanup");
    run_to_cancel("pthread_cancel(pthread_self()), then the type made asynchronous", cancels_itself, (void *)1, 0,
                  "cancel-sent cleanup");
    sem_init(&token_sem, 0, 0);
    run_to_cancel("sem_wait with a token to take", sem_wait_with_a_token, NULL, 1, "enabled cleanup");
    int value = -1;
    sem_getvalue(&token_sem, &value);
    CHECK(value == 1);
    printf("the token is left: value %d\n", value);
    CHECK(pipe(quiet_pipe) == 0);
    cancelled_by_a_timer_thread("cancelled in read by a timer's thread", blocks_in_read, "blocking cleanup");
    cancelled_by_a_timer_thread("cancelled in pthread_cond_wait by a timer's thread", blocks_in_cond_wait,
                                "blocking unlock cleanup");
    run_to_cancel("a cleanup handler that sleeps", sleeps_in_cleanup, NULL, 1, "blocking cleanup-slept");
    return program_end("thread_cancel_points");
}
