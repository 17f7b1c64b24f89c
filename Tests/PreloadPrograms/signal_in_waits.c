/* signal_in_waits.c — a handler for a thread that waits for a lock, a
 * condition, a semaphore, a futex, another thread, an fd or time runs at
 * once, while the thread still waits, as the kernel runs it. Afterwards the
 * wait goes on (mutex, rwlock, condition, join, barrier), or fails with
 * EINTR where the kernel's does: after a handler without SA_RESTART (sem_wait,
 * futex, read), and after any handler for the calls the kernel never
 * restarts (timed semaphore and futex waits, poll, ppoll, select, epoll_wait,
 * the sleeps). */
#include "check.h"
#include <linux/futex.h>
#include <semaphore.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>

enum { SEM, SEM_TIMED, FUTEX, FUTEX_TIMED, MUTEX, RWLOCK, COND, JOIN, BARRIER,
       READ, POLL, PPOLL, SELECT, EPOLL, NANOSLEEP, USLEEP, KINDS };
static const char *names[KINDS] = {"sem_wait", "sem_timedwait", "futex", "timed futex", "mutex", "rwlock", "cond",
                                   "join", "barrier", "read", "poll", "ppoll", "select", "epoll_wait", "nanosleep",
                                   "usleep"};
static int pipe_fds[2];

static volatile sig_atomic_t handled;
static void on_usr1(int sig) { (void)sig; handled++; }

static sem_t sem;
static uint32_t word;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int cond_flag;
static pthread_barrier_t barrier;
static pthread_t joined;
static int kind, waiting, finished;

static void *sleeper(void *arg) {
    while (!__atomic_load_n(&word, __ATOMIC_SEQ_CST)) sleep_ms(1); /* ends when the wait is released */
    return arg;
}

/* Waits once; returns 0, or the errno its call failed with. */
static void *waiter(void *arg) {
    (void)arg;
    __atomic_store_n(&waiting, 1, __ATOMIC_SEQ_CST);
    long r = 0;
    switch (kind) {
    case SEM: r = sem_wait(&sem) ? errno : 0; break;
    case SEM_TIMED: {
        struct timespec later = deadline_after(CLOCK_REALTIME, 20000);
        r = sem_timedwait(&sem, &later) ? errno : 0;
        break;
    }
    case FUTEX: r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0) ? errno : 0; break;
    case FUTEX_TIMED: {
        struct timespec twenty = {20, 0};
        r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &twenty, NULL, 0) ? errno : 0;
        break;
    }
    case MUTEX: r = pthread_mutex_lock(&mutex); pthread_mutex_unlock(&mutex); break;
    case RWLOCK: r = pthread_rwlock_wrlock(&rwlock); pthread_rwlock_unlock(&rwlock); break;
    case COND:
        pthread_mutex_lock(&mutex);
        while (!cond_flag && r == 0) r = pthread_cond_wait(&cond, &mutex);
        pthread_mutex_unlock(&mutex);
        break;
    case JOIN: r = pthread_join(joined, NULL); break;
    case BARRIER: r = pthread_barrier_wait(&barrier); if (r == PTHREAD_BARRIER_SERIAL_THREAD) r = 0; break;
    case READ: {
        char c;
        r = read(pipe_fds[0], &c, 1) == 1 ? 0 : errno;
        break;
    }
    case POLL: {
        struct pollfd p = {pipe_fds[0], POLLIN, 0};
        r = poll(&p, 1, 20000) == 1 ? 0 : errno;
        break;
    }
    case PPOLL: {
        struct pollfd p = {pipe_fds[0], POLLIN, 0};
        struct timespec twenty = {20, 0};
        r = ppoll(&p, 1, &twenty, NULL) == 1 ? 0 : errno;
        break;
    }
    case SELECT: {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(pipe_fds[0], &set);
        struct timeval twenty = {20, 0};
        r = select(pipe_fds[0] + 1, &set, NULL, NULL, &twenty) == 1 ? 0 : errno;
        break;
    }
    case EPOLL: {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event e = {.events = EPOLLIN};
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, pipe_fds[0], &e) == 0);
        r = epoll_wait(ep, &e, 1, 20000) == 1 ? 0 : errno;
        close(ep);
        break;
    }
    case NANOSLEEP: {
        struct timespec ten = {10, 0};
        r = nanosleep(&ten, NULL) ? errno : 0;
        break;
    }
    case USLEEP: r = usleep(10000000) ? errno : 0; break;
    }
    __atomic_store_n(&finished, 1, __ATOMIC_SEQ_CST);
    return (void *)r;
}

/* One round: the waiter waits, gets SIGUSR1, and is released afterwards. */
static void round_of(int k, int restart) {
    kind = k;
    handled = 0;
    waiting = 0;
    finished = 0;
    word = 0;
    cond_flag = 0;
    CHECK(sem_init(&sem, 0, 0) == 0);
    CHECK(pipe(pipe_fds) == 0);
    CHECK(set_handler(SIGUSR1, on_usr1, restart ? SA_RESTART : 0) == 0);
    if (k == MUTEX) pthread_mutex_lock(&mutex);
    if (k == RWLOCK) pthread_rwlock_rdlock(&rwlock);
    if (k == JOIN) CHECK_RC(pthread_create(&joined, NULL, sleeper, NULL), 0);
    if (k == BARRIER) CHECK_RC(pthread_barrier_init(&barrier, NULL, 2), 0);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, waiter, NULL), 0);
    while (!__atomic_load_n(&waiting, __ATOMIC_SEQ_CST)) sleep_ms(1);
    sleep_ms(50); /* it is inside its wait now, most likely */
    int timed = k == SEM_TIMED || k == FUTEX_TIMED || k >= POLL; /* never restarted by the kernel */
    int eintr_kind = k == SEM || k == FUTEX || k == READ || timed;
    int want = eintr_kind && (!restart || timed) ? EINTR : 0;
    /* A wait that ends with EINTR is signalled until it ended, so that one
     * signal surely lands inside it however late the thread got there (a
     * loaded machine, qemu); one that goes on gets five, 20 ms apart. */
    for (int sent = 0; sent < (want ? 500 : 5) && !__atomic_load_n(&finished, __ATOMIC_SEQ_CST); sent++) {
        CHECK_RC(pthread_kill(t, SIGUSR1), 0);
        for (int i = 0; i < 20 && !finished; i++) sleep_ms(1);
    }
    for (int i = 0; i < 5000 && !handled; i++) sleep_ms(1);
    int ran_while_waiting = handled >= 1;
    /* Release the wait (whatever it is), then see how it ended. */
    __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    sem_post(&sem);
    CHECK(write(pipe_fds[1], "x", 1) == 1);
    if (k == MUTEX) pthread_mutex_unlock(&mutex);
    if (k == RWLOCK) pthread_rwlock_unlock(&rwlock);
    pthread_mutex_lock(&mutex);
    cond_flag = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mutex);
    if (k == BARRIER) pthread_barrier_wait(&barrier);
    void *result;
    CHECK_RC(pthread_join(t, &result), 0);
    if (k == BARRIER) pthread_barrier_destroy(&barrier);
    int r = (int)(intptr_t)result;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    CHECK(ran_while_waiting);
    CHECK_RC(r, want);
    printf("%s, %s: handler ran while it waited: %s; then %s\n", names[k], restart ? "SA_RESTART" : "no SA_RESTART",
           ran_while_waiting ? "yes" : "no", r ? strerror(r) : "went on");
}

int main(void) {
    program_start(60);
    for (int k = 0; k < KINDS; k++) {
        round_of(k, 0);
        round_of(k, 1);
    }
    return program_end("signal_in_waits");
}
