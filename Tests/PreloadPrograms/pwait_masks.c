/* pwait_masks.c — ppoll, pselect and epoll_pwait take their signal mask for
 * the call's length on the calling thread only: a signal the thread blocks
 * otherwise is handled during the call (at once if it was already pending)
 * and ends it with EINTR; afterwards the thread's mask is back. The classic
 * use: SIGCHLD blocked except while the event loop waits. */
#include "check.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

enum { PPOLL, PSELECT, EPOLL_PWAIT, KINDS };
static const char *names[KINDS] = {"ppoll", "pselect", "epoll_pwait"};
static volatile sig_atomic_t handled;
static void on_usr1(int sig) { (void)sig; handled++; }
static pthread_t waiter_thread;

static void *send_later(void *arg) {
    sleep_ms(50);
    pthread_kill(waiter_thread, SIGUSR1);
    return arg;
}

/* One masked wait on a pipe nobody writes to; returns 0 or its errno. */
static int masked_wait(int kind, int fd, const sigset_t *mask) {
    struct timespec ten = {10, 0};
    switch (kind) {
    case PPOLL: {
        struct pollfd p = {fd, POLLIN, 0};
        return ppoll(&p, 1, &ten, mask) < 0 ? errno : 0;
    }
    case PSELECT: {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        return pselect(fd + 1, &set, NULL, NULL, &ten, mask) < 0 ? errno : 0;
    }
    default: {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event e = {.events = EPOLLIN};
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == 0);
        int r = epoll_pwait(ep, &e, 1, 10000, mask) < 0 ? errno : 0;
        close(ep);
        return r;
    }
    }
}

static int blocked_now(void) {
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    return sigismember(&now, SIGUSR1);
}

static void *waiter(void *arg) {
    int kind = (int)(intptr_t)arg;
    int fds[2];
    CHECK(pipe(fds) == 0);
    sigset_t usr1, none;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigemptyset(&none);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);

    /* Pending before the call: handled as the call unblocks it. */
    handled = 0;
    CHECK_RC(pthread_kill(pthread_self(), SIGUSR1), 0);
    CHECK(handled == 0); /* blocked: pending */
    int pending_result = masked_wait(kind, fds[0], &none);
    int pending_handled = handled;
    int pending_mask_back = blocked_now();

    /* Sent during the call by another thread. */
    handled = 0;
    pthread_t sender;
    CHECK_RC(pthread_create(&sender, NULL, send_later, NULL), 0);
    int during_result = masked_wait(kind, fds[0], &none);
    int during_handled = handled;
    pthread_join(sender, NULL);
    int during_mask_back = blocked_now();

    /* After the call, blocked again: stays pending until unblocked. */
    handled = 0;
    CHECK_RC(pthread_kill(pthread_self(), SIGUSR1), 0);
    sleep_ms(20);
    int stayed_pending = handled == 0;
    CHECK_RC(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);
    for (int i = 0; i < 1000 && !handled; i++) sleep_ms(1);

    CHECK_RC(pending_result, EINTR);
    CHECK(pending_handled == 1 && pending_mask_back);
    CHECK_RC(during_result, EINTR);
    CHECK(during_handled == 1 && during_mask_back);
    CHECK(stayed_pending && handled == 1);
    printf("%s: pending signal handled in the call: %s; sent during it: %s; mask back after: %s\n", names[kind],
           pending_result == EINTR && pending_handled == 1 ? "EINTR" : "no",
           during_result == EINTR && during_handled == 1 ? "EINTR" : "no",
           pending_mask_back && during_mask_back && stayed_pending ? "yes" : "no");
    close(fds[0]);
    close(fds[1]);
    return NULL;
}

int main(void) {
    program_start(60);
    CHECK(set_handler(SIGUSR1, on_usr1, SA_RESTART) == 0);
    for (int k = 0; k < KINDS; k++) {
        CHECK_RC(pthread_create(&waiter_thread, NULL, waiter, (void *)(intptr_t)k), 0);
        CHECK_RC(pthread_join(waiter_thread, NULL), 0);
    }
    return program_end("pwait_masks");
}
