/* sem_timeouts.c — a timed semaphore wait that times out just as a post
 * arrives either takes that token and succeeds, or leaves it in the
 * semaphore: a post is never lost. (The library took the token and still
 * said ETIMEDOUT; CPython's locks are semaphores, and test_queue's 50
 * threads with 10 us gets hung on the lost wake-ups.) 20 threads post 20,000
 * tokens; 20 threads take them with 10 us timeouts; every token is counted. */
#include "check.h"
#include <semaphore.h>

#define THREADS 20
#define PER_THREAD 1000

static sem_t sem;
static long taken, posted_all;

static void *producer(void *unused) {
    (void)unused;
    for (int i = 0; i < PER_THREAD; i++) {
        sem_post(&sem);
        if (i % 2) usleep((useconds_t)((i * 7919) % 1000)); /* posts land while waits time out */
    }
    return NULL;
}

static void *consumer(void *unused) {
    (void)unused;
    struct timespec done_at = {0, 0};
    for (int round = 0;; round++) {
        clockid_t clock = round % 2 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
        struct timespec t = ts_now(clock);
        t.tv_nsec += 10000; /* 10 us, as CPython's SimpleQueue.get(timeout=1e-5) */
        if (t.tv_nsec >= 1000000000L) { t.tv_sec++; t.tv_nsec -= 1000000000L; }
        if (sem_clockwait(&sem, clock, &t) == 0) {
            __atomic_add_fetch(&taken, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        CHECK(errno == ETIMEDOUT);
        if (!__atomic_load_n(&posted_all, __ATOMIC_SEQ_CST)) continue;
        if (done_at.tv_sec == 0) done_at = deadline_after(CLOCK_MONOTONIC, 300); /* take what is left */
        if (ts_reached(ts_now(CLOCK_MONOTONIC), done_at)) return NULL;
    }
}

int main(void) {
    program_start(60);
    sem_init(&sem, 0, 0);
    pthread_t p[THREADS], c[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_create(&c[i], NULL, consumer, NULL), 0);
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_create(&p[i], NULL, producer, NULL), 0);
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_join(p[i], NULL), 0);
    __atomic_store_n(&posted_all, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_join(c[i], NULL), 0);
    int left = 0;
    sem_getvalue(&sem, &left);
    CHECK(taken + left == THREADS * PER_THREAD);
    printf("timed waits: every one of %d posts taken or still there\n", THREADS * PER_THREAD);
    if (taken + left != THREADS * PER_THREAD) printf("taken %ld, left %d\n", taken, left);
    return program_end("sem_timeouts");
}
