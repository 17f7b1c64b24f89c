/* blocked_signal_waits.c — a signal sent to one thread (pthread_kill) that
 * blocks it stays pending for that thread and ends none of its waits: a
 * read, sem_wait, poll and nanosleep each go on to their normal end (no
 * EINTR), and the handler runs in that thread once it unblocks the signal.
 * (Under green run such a signal used to end the thread's blocking call
 * with EINTR, as if its handler had run.) */
#include "check.h"
#include <poll.h>
#include <semaphore.h>

enum { READ, SEM, POLL, NANOSLEEP, KINDS };
static const char *names[KINDS] = {"read", "sem_wait", "poll", "nanosleep"};
static int pipe_fds[2];
static sem_t sem;

struct outcome {
    int kind, result, err, pending, handled_here;
};

static void *waiter(void *arg) {
    struct outcome *o = arg;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
    char c;
    struct pollfd p = {pipe_fds[0], POLLIN, 0};
    struct timespec pause = {0, 150 * 1000000L};
    errno = 0;
    switch (o->kind) {
    case READ: o->result = (int)read(pipe_fds[0], &c, 1); break;
    case SEM: o->result = sem_wait(&sem); break;
    case POLL: o->result = poll(&p, 1, -1); break;
    case NANOSLEEP: o->result = nanosleep(&pause, NULL); break;
    }
    o->err = errno;
    if (o->kind == POLL) CHECK(read(pipe_fds[0], &c, 1) == 1);
    sigset_t pending;
    sigemptyset(&pending);
    CHECK(sigpending(&pending) == 0);
    o->pending = sigismember(&pending, SIGUSR1) == 1;
    CHECK_RC(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0); /* the handler runs here, before this returns */
    o->handled_here = handler_runs == 1 && pthread_equal(handler_thread, pthread_self());
    return NULL;
}

/* Every thread blocks SIGUSR2 (main did before it made the thread): one sent
 * to a thread, by itself (raise) or by main (pthread_kill), is pending for
 * it alone and its sigtimedwait takes it. (Under green run it went to the
 * first hub's OS thread: sigpending said no, and a sigtimedwait on another
 * hub waited out its timeout.) */
static volatile int sent;
static void *taker(void *how) {
    int self = (int)(intptr_t)how; /* 0: main sends; 1: raise; 2: pthread_kill, then a zero-timeout look */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    if (self == 1) CHECK(raise(SIGUSR2) == 0);
    if (self == 2) CHECK_RC(pthread_kill(pthread_self(), SIGUSR2), 0);
    while (!__atomic_load_n(&sent, __ATOMIC_SEQ_CST)) sleep_ms(1);
    sigset_t pending;
    CHECK(sigpending(&pending) == 0);
    struct timespec five = {5, 0}, zero = {0, 0};
    siginfo_t info;
    int sig = sigtimedwait(&usr2, &info, self == 2 ? &zero : &five);
    printf("every thread blocks it, sent by %s: pending for the thread: %s; sigtimedwait%s took it: %s\n",
           self == 1 ? "itself" : self == 2 ? "itself (pthread_kill)" : "main", sigismember(&pending, SIGUSR2) ? "yes" : "no",
           self == 2 ? " with a zero timeout" : "", sig == SIGUSR2 ? "yes" : "no");
    CHECK(sigismember(&pending, SIGUSR2));
    CHECK(sig == SIGUSR2);
    return NULL;
}

static void sent_while_all_block(void) {
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0); /* the threads inherit it */
    for (int self = 2; self >= 0; self--) {
        sent = self;
        pthread_t t;
        CHECK_RC(pthread_create(&t, NULL, taker, (void *)(intptr_t)self), 0);
        if (!self) {
            CHECK_RC(pthread_kill(t, SIGUSR2), 0);
            __atomic_store_n(&sent, 1, __ATOMIC_SEQ_CST);
        }
        CHECK_RC(pthread_join(t, NULL), 0);
    }
    CHECK_RC(pthread_sigmask(SIG_UNBLOCK, &usr2, NULL), 0);
}

int main(void) {
    program_start(60);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record_handler; /* no SA_RESTART: a handler would end a read with EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    CHECK(pipe(pipe_fds) == 0);
    sem_init(&sem, 0, 0);
    for (int k = 0; k < KINDS; k++) {
        handler_runs = 0;
        struct outcome o = {.kind = k, .result = -2};
        pthread_t t;
        CHECK_RC(pthread_create(&t, NULL, waiter, &o), 0);
        sleep_ms(40);                           /* it waits by now */
        CHECK_RC(pthread_kill(t, SIGUSR1), 0);  /* blocked there: pending for it alone */
        sleep_ms(40);
        CHECK(handler_runs == 0);
        if (k == READ || k == POLL) CHECK(write(pipe_fds[1], "x", 1) == 1);
        if (k == SEM) CHECK(sem_post(&sem) == 0);
        CHECK_RC(pthread_join(t, NULL), 0);
        int normal = k == POLL ? o.result == 1 : o.result == (k == READ ? 1 : 0);
        CHECK(normal);
        CHECK(o.pending);
        CHECK(o.handled_here);
        printf("%s with the signal blocked: %s; pending for the thread: %s; handled on unblock: %s\n", names[k],
               normal ? "went on to its end" : strerror(o.err), o.pending ? "yes" : "no",
               o.handled_here ? "yes, in it" : "no");
    }
    sent_while_all_block();
    return program_end("blocked_signal_waits");
}
