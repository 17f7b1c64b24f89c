/* priority_waits.c — waits for what the hub cannot watch on its own: select
 * with only an except set, poll for POLLPRI alone or for no events, on a
 * pipe that is readable (no priority data ever comes). Each returns 0 at
 * its timeout, as natively, without spinning: the hub watches readability
 * in their place, which woke the wait again at once for the whole timeout
 * (a core busy for all of it). */
#include "check.h"
#include <poll.h>
#include <sys/resource.h>
#include <sys/select.h>

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

enum { SELECT_EXCEPT, WAIT_PRI, WAIT_NONE, KINDS };
static const char *names[KINDS] = {"select, except set only", "poll for POLLPRI alone", "poll for no events"};

static void *waits(void *arg) {
    (void)arg;
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "x", 1) == 1); /* readable from now on */
    for (int k = 0; k < KINDS; k++) {
        double before = cpu_seconds();
        int r;
        if (k == SELECT_EXCEPT) {
            fd_set x;
            FD_ZERO(&x);
            FD_SET(p[0], &x);
            struct timeval one = {1, 0};
            r = select(p[0] + 1, NULL, NULL, &x, &one);
        } else {
            struct pollfd f = {.fd = p[0], .events = k == WAIT_PRI ? POLLPRI : 0};
            r = poll(&f, 1, 1000);
        }
        /* Generous: natively a few ms of CPU; spinning, about the whole second. */
        int idle = cpu_seconds() - before < 0.25;
        printf("%s, on a readable pipe: %d at its timeout, idle while it waited: %s\n", names[k], r,
               idle ? "yes" : "no");
        CHECK(r == 0);
        CHECK(idle);
    }
    close(p[0]);
    close(p[1]);
    return NULL;
}

int main(void) {
    program_start(60);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, waits, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    return program_end("priority_waits");
}
