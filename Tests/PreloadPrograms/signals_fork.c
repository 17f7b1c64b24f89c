/* signals_fork.c — signal and fork semantics of a threaded program:
 *  - a SIGTERM handler installed without SA_RESTART makes a blocked accept()
 *    fail with EINTR, so the accept loop sees its stop flag; sigaction
 *    reports the program's own handler;
 *  - fork() from a thread: the child has only that thread (another thread's
 *    output never appears from the child) and ends with status 0 when that
 *    thread returns. */
#include "check.h"
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static void *send_term_later(void *arg) {
    sleep_ms(100);
    kill(getpid(), SIGTERM);
    return arg;
}

static void accept_loop_stops_on_sigterm(void) {
    struct sigaction sa, seen;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: a blocked call fails with EINTR */
    CHECK(sigaction(SIGTERM, &sa, NULL) == 0);
    CHECK(sigaction(SIGTERM, NULL, &seen) == 0);
    CHECK(seen.sa_handler == on_term && !(seen.sa_flags & SA_RESTART));
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 8) == 0);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, send_term_later, NULL), 0);
    int interrupted = 0;
    while (!stop) {
        int fd = accept(ls, NULL, NULL);
        if (fd >= 0) close(fd);
        else if (errno == EINTR) interrupted++;
    }
    CHECK(interrupted >= 1);
    CHECK_RC(pthread_join(t, NULL), 0);
    close(ls);
    printf("accept interrupted by SIGTERM: %s\n", interrupted ? "EINTR, loop stopped" : "FAIL");
}

static void *ticker(void *arg) {
    pid_t parent = (pid_t)(intptr_t)arg;
    for (int i = 0; i < 6; i++) {
        if (getpid() != parent) printf("FAIL ticker ran in the child\n");
        sleep_ms(50);
    }
    return NULL;
}

static void *forker(void *arg) {
    (void)arg;
    sleep_ms(60);
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(200); /* the ticker would print from the child meanwhile if it had come along */
        printf("child: alone, returning from the thread\n");
        return NULL; /* the last thread of the child: exits 0 */
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("child of a thread exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return NULL;
}

int main(void) {
    program_start(30);
    accept_loop_stops_on_sigterm();
    pthread_t a, b;
    CHECK_RC(pthread_create(&a, NULL, ticker, (void *)(intptr_t)getpid()), 0);
    CHECK_RC(pthread_create(&b, NULL, forker, NULL), 0);
    CHECK_RC(pthread_join(a, NULL), 0);
    CHECK_RC(pthread_join(b, NULL), 0);
    return program_end("signals_fork");
}
