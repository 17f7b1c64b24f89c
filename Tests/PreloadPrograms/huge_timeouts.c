/* huge_timeouts.c — timeouts too large to add to the clock mean "wait for
 * ever", as in the kernel: select, ppoll, pselect and sem_timedwait with the
 * largest values wait for the byte or post that comes 30 ms later, instead of
 * returning at once (a sum that overflowed made the deadline lie in the past). */
#include "check.h"
#include <limits.h>
#include <poll.h>
#include <semaphore.h>
#include <sys/select.h>

static int p[2];
static sem_t sem;

static void *later(void *unused) {
    (void)unused;
    sleep_ms(30);
    CHECK(write(p[1], "x", 1) == 1);
    sem_post(&sem);
    return NULL;
}

static void start(pthread_t *t) {
    CHECK(pipe(p) == 0);
    CHECK_RC(pthread_create(t, NULL, later, NULL), 0);
}

static void finish(pthread_t t) {
    CHECK_RC(pthread_join(t, NULL), 0);
    close(p[0]);
    close(p[1]);
}

int main(void) {
    program_start(20);
    sem_init(&sem, 0, 0);
    pthread_t t;

    start(&t);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {LONG_MAX, 999999};
    CHECK(select(p[0] + 1, &r, NULL, NULL, &tv) == 1);
    finish(t);

    start(&t);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    struct timespec ts = {LONG_MAX, 999999999};
    CHECK(ppoll(&pf, 1, &ts, NULL) == 1 && (pf.revents & POLLIN));
    finish(t);

    start(&t);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    CHECK(pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL) == 1);
    finish(t);

    start(&t);
    struct timespec far = {LONG_MAX, 0};
    CHECK(sem_timedwait(&sem, &far) == 0);
    finish(t);
    while (sem_trywait(&sem) == 0) {}

    printf("huge timeouts: select, ppoll, pselect and sem_timedwait waited for the event\n");
    return program_end("huge_timeouts");
}
