/* vfork_mask.c — a vfork child shares its parent's memory: what it does to
 * its own signal mask (CPython's subprocess and glibc's posix_spawn block
 * everything around vfork, and the child unblocks before exec) must not
 * change the parent's. After the child has gone, a timer's signal still
 * reaches the parent's handler. */
#include "check.h"
#include <signal.h>
#include <sys/wait.h>

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

int main(void) {
    program_start(30);
    CHECK(set_handler(SIGUSR2, on_alarm, 0) == 0);
    for (int round = 0; round < 3; round++) {
        sigset_t all, old, none;
        sigfillset(&all);
        sigemptyset(&none);
        CHECK_RC(pthread_sigmask(SIG_BLOCK, &all, &old), 0);
        pid_t pid = vfork();
        if (pid == 0) {
            sigprocmask(SIG_SETMASK, &none, NULL); /* the child's own */
            _exit(0);
        }
        CHECK_RC(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
        int status = 0;
        waitpid(pid, &status, 0); /* its status is not what this checks */
        kill(getpid(), SIGUSR2);
        for (int i = 0; i < 2000 && alarms <= round; i++) sleep_ms(1);
        CHECK(alarms == round + 1);
    }
    printf("vfork child's mask changes: the parent still gets its signals: %s\n", alarms == 3 ? "yes" : "no");
    return check_failures ? 1 : 0;
}
