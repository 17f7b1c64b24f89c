/* sigsuspend_wait.c — sigsuspend and pause end when a handler has run for
 * the calling thread, whatever the handler's SA_RESTART (coreutils'
 * timeout waits for SIGCHLD this way), while the thread's other threads keep
 * running; sigsuspend's mask is the thread's only while it waits. */
#include "check.h"
#include <signal.h>
#include <sys/wait.h>

static volatile sig_atomic_t got;
static void on_signal(int sig) { got = sig; }

static void *send_later(void *arg) {
    sleep_ms(50);
    kill(getpid(), (int)(intptr_t)arg);
    return NULL;
}

static int ticks;
static void *ticker(void *arg) {
    for (int i = 0; i < 5; i++) {
        sleep_ms(5);
        __atomic_add_fetch(&ticks, 1, __ATOMIC_SEQ_CST);
    }
    return arg;
}

int main(void) {
    program_start(30);
    CHECK(set_handler(SIGUSR1, on_signal, SA_RESTART) == 0 && set_handler(SIGCHLD, on_signal, SA_RESTART) == 0);

    /* sigsuspend: SIGUSR1 blocked until the wait, sent meanwhile by a thread. */
    sigset_t usr1, old, none;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigemptyset(&none);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
    pthread_t t, tick;
    CHECK_RC(pthread_create(&t, NULL, send_later, (void *)(intptr_t)SIGUSR1), 0);
    CHECK_RC(pthread_create(&tick, NULL, ticker, NULL), 0);
    CHECK_ERRNO(sigsuspend(&none), EINTR);
    CHECK(got == SIGUSR1);
    sigset_t now;
    CHECK_RC(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
    CHECK(sigismember(&now, SIGUSR1)); /* the mask from before sigsuspend is back */
    pthread_join(t, NULL);
    pthread_join(tick, NULL);
    CHECK(ticks == 5);
    printf("sigsuspend: returns EINTR after an SA_RESTART handler, mask restored\n");

    /* The way timeout(1) waits for its child: SIGCHLD blocked, then sigsuspend. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &chld, NULL), 0);
    got = 0;
    pid_t pid = fork();
    if (pid == 0) {
        usleep(20000);
        _exit(7);
    }
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) sigsuspend(&none);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7 && got == SIGCHLD);
    printf("sigsuspend: woken by SIGCHLD, child reaped\n");

    /* pause: woken by a handler for a signal another thread sends. */
    CHECK_RC(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    got = 0;
    CHECK_RC(pthread_create(&t, NULL, send_later, (void *)(intptr_t)SIGUSR1), 0);
    CHECK_ERRNO(pause(), EINTR);
    CHECK(got == SIGUSR1);
    pthread_join(t, NULL);
    printf("pause: returns EINTR after the handler\n");
    return check_failures ? 1 : 0;
}
