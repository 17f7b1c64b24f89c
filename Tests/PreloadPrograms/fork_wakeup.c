/* fork_wakeup.c — a fork child's first wait on another thread's work (the
 * library resolves names on a thread pool) is answered at once, even when
 * the parent forked while its hub had a wake-up from a signal handler still
 * to handle. socat in fork mode stalled one child in ten for a minute this
 * way: a SIGCHLD from the last child, then fork, then getaddrinfo. Here a
 * POSIX timer sends the parent a signal every millisecond while it forks
 * children that each resolve "localhost". */
#include "check.h"
#include <netdb.h>
#include <signal.h>
#include <sys/wait.h>

#define CHILDREN 60

static volatile sig_atomic_t ticks;
static void on_tick(int sig) { (void)sig; ticks++; }

int main(void) {
    program_start(120);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick; /* no SA_RESTART: blocking calls see EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    timer_t timer;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    CHECK(timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0);
    struct itimerspec every_ms = {{0, 1000000}, {0, 1000000}};
    CHECK(timer_settime(timer, 0, &every_ms, NULL) == 0);

    int slow = 0, failed = 0;
    for (int i = 0; i < CHILDREN; i++) {
        usleep(500 + (useconds_t)(i % 7) * 100); /* the hub waits; signals arrive meanwhile */
        pid_t kid = fork();
        if (kid == 0) {
            struct timespec start = ts_now(CLOCK_MONOTONIC);
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
            int r = getaddrinfo("localhost", "80", &hints, &ai);
            if (ai) freeaddrinfo(ai);
            _exit(r != 0 ? 2 : ms_since(start) > 5000 ? 1 : 0);
        }
        int st = 0;
        while (waitpid(kid, &st, 0) < 0 && errno == EINTR) {}
        if (WIFEXITED(st) && WEXITSTATUS(st) == 1) slow++;
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed++;
    }
    timer_delete(timer);
    CHECK(ticks > 0);
    CHECK(failed == 0);
    CHECK(slow == 0);
    printf("fork children resolving under a signal storm: %d of %d answered in time\n", CHILDREN - slow - failed,
           CHILDREN);
    return program_end("fork_wakeup");
}
