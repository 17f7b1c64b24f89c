/* sigwait_thread.c — a thread that waits for signals (sigwait, sigwaitinfo,
 * sigtimedwait, a blocking read of a signalfd), as daemons' signal threads
 * and dig do, lets the other threads run meanwhile, and takes each signal
 * with the siginfo the kernel gives. */
#include "check.h"
#include <signal.h>
#include <sys/signalfd.h>

static sigset_t waited;
static int progress; /* steps the main thread made while the waiter waited */

static void *sigwait_thread(void *unused) {
    (void)unused;
    int sig = 0;
    CHECK_RC(sigwait(&waited, &sig), 0);
    CHECK(sig == SIGUSR1);
    CHECK(__atomic_load_n(&progress, __ATOMIC_SEQ_CST) == 10);
    siginfo_t info;
    CHECK(sigwaitinfo(&waited, &info) == SIGUSR2);
    CHECK(info.si_code == SI_QUEUE && info.si_value.sival_int == 42 && info.si_pid == getpid());
    struct timespec t = {0, 50 * 1000000};
    CHECK_ERRNO(sigtimedwait(&waited, &info, &t), EAGAIN);
    struct timespec bad = {0, 2000000000};
    CHECK_ERRNO(sigtimedwait(&waited, &info, &bad), EINVAL);
    return NULL;
}

static void *signalfd_thread(void *arg) {
    int fd = *(int *)arg;
    struct signalfd_siginfo si;
    CHECK(read(fd, &si, sizeof si) == (ssize_t)sizeof si);
    CHECK(si.ssi_signo == SIGUSR1);
    CHECK(__atomic_load_n(&progress, __ATOMIC_SEQ_CST) == 10);
    return NULL;
}

static void steps_then(int sig, int value) {
    for (int i = 0; i < 10; i++) {
        sleep_ms(5);
        __atomic_add_fetch(&progress, 1, __ATOMIC_SEQ_CST);
    }
    if (value) sigqueue(getpid(), sig, (union sigval){.sival_int = value});
    else kill(getpid(), sig);
}

int main(void) {
    program_start(30);
    sigemptyset(&waited);
    sigaddset(&waited, SIGUSR1);
    sigaddset(&waited, SIGUSR2);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &waited, NULL), 0);

    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, sigwait_thread, NULL), 0);
    steps_then(SIGUSR1, 0);
    sleep_ms(20);
    steps_then(SIGUSR2, 42);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("sigwait: the other thread ran meanwhile; sigwaitinfo siginfo ok; sigtimedwait EAGAIN and EINVAL\n");

    __atomic_store_n(&progress, 0, __ATOMIC_SEQ_CST);
    int fd = signalfd(-1, &waited, SFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_RC(pthread_create(&t, NULL, signalfd_thread, &fd), 0);
    steps_then(SIGUSR1, 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    close(fd);
    printf("signalfd: a blocking read waited while the other thread ran\n");
    return program_end("sigwait_thread");
}
