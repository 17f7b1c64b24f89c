/* semaphore.c — POSIX unnamed semaphores: sem_init/post/wait, sem_trywait
 * (EAGAIN), sem_timedwait expiring (ETIMEDOUT) and woken in time,
 * sem_getvalue, and a bounded producer/consumer ring built on two counting
 * semaphores and a mutex. */
#include "check.h"
#include <semaphore.h>

static void basics(void) {
    sem_t s;
    int v = -1;
    CHECK(sem_init(&s, 0, 0) == 0);
    CHECK(sem_getvalue(&s, &v) == 0 && v == 0);
    CHECK_ERRNO(sem_trywait(&s), EAGAIN);
    struct timespec d = deadline_after(CLOCK_REALTIME, 100);
    CHECK_ERRNO(sem_timedwait(&s, &d), ETIMEDOUT);
    CHECK(ts_reached(ts_now(CLOCK_REALTIME), d));
    CHECK(sem_post(&s) == 0);
    CHECK(sem_post(&s) == 0);
    CHECK(sem_getvalue(&s, &v) == 0 && v == 2);
    CHECK(sem_trywait(&s) == 0);
    CHECK(sem_wait(&s) == 0);
    CHECK(sem_getvalue(&s, &v) == 0 && v == 0);
    /* A timed wait with a past deadline still takes an available unit. */
    CHECK(sem_post(&s) == 0);
    struct timespec past = ts_now(CLOCK_REALTIME);
    past.tv_sec -= 1;
    CHECK(sem_timedwait(&s, &past) == 0);
    CHECK_ERRNO(sem_timedwait(&s, &past), ETIMEDOUT);
    CHECK(sem_destroy(&s) == 0);
    printf("basics: trywait EAGAIN, timedwait ETIMEDOUT, getvalue counts\n");
}

static sem_t wake;
static void *post_later(void *arg) {
    (void)arg;
    sleep_ms(50);
    CHECK(sem_post(&wake) == 0);
    return NULL;
}

static void woken_in_time(void) {
    CHECK(sem_init(&wake, 0, 0) == 0);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, post_later, NULL), 0);
    struct timespec d = deadline_after(CLOCK_REALTIME, 10000);
    int rc;
    while ((rc = sem_timedwait(&wake, &d)) == -1 && errno == EINTR) {}
    CHECK(rc == 0);
    CHECK(!ts_reached(ts_now(CLOCK_REALTIME), d));
    CHECK_RC(pthread_join(t, NULL), 0);
    /* sem_wait blocks until a post from another thread. */
    CHECK_RC(pthread_create(&t, NULL, post_later, NULL), 0);
    CHECK(sem_wait(&wake) == 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK(sem_destroy(&wake) == 0);
    printf("woken in time: timedwait and wait returned after a post\n");
}

/* --- producer/consumer ------------------------------------------------- */

enum { PRODUCERS = 4, CONSUMERS = 3, ITEMS = 1500, SLOTS = 5 };
static sem_t empty_slots, full_slots;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static long ring[SLOTS];
static int ring_in, ring_out;
static long consumed_sum, consumed_count;

static void *producer(void *arg) {
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < ITEMS; i++) {
        CHECK(sem_wait(&empty_slots) == 0);
        pthread_mutex_lock(&ring_lock);
        ring[ring_in] = id * 100000 + i;
        ring_in = (ring_in + 1) % SLOTS;
        pthread_mutex_unlock(&ring_lock);
        CHECK(sem_post(&full_slots) == 0);
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    for (;;) {
        /* Wait with a deadline; an expiry just means "try again". */
        struct timespec d = deadline_after(CLOCK_REALTIME, 1000);
        if (sem_timedwait(&full_slots, &d) != 0) {
            CHECK(errno == ETIMEDOUT || errno == EINTR);
            continue;
        }
        pthread_mutex_lock(&ring_lock);
        long v = ring[ring_out];
        ring_out = (ring_out + 1) % SLOTS;
        pthread_mutex_unlock(&ring_lock);
        CHECK(sem_post(&empty_slots) == 0);
        if (v < 0) break;   /* poison pill */
        __atomic_add_fetch(&consumed_sum, v, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&consumed_count, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void producer_consumer(void) {
    CHECK(sem_init(&empty_slots, 0, SLOTS) == 0);
    CHECK(sem_init(&full_slots, 0, 0) == 0);
    pthread_t p[PRODUCERS], c[CONSUMERS];
    for (long i = 0; i < CONSUMERS; i++) CHECK_RC(pthread_create(&c[i], NULL, consumer, NULL), 0);
    for (long i = 0; i < PRODUCERS; i++) CHECK_RC(pthread_create(&p[i], NULL, producer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < PRODUCERS; i++) CHECK_RC(pthread_join(p[i], NULL), 0);
    for (int i = 0; i < CONSUMERS; i++) {   /* one poison pill per consumer */
        CHECK(sem_wait(&empty_slots) == 0);
        pthread_mutex_lock(&ring_lock);
        ring[ring_in] = -1;
        ring_in = (ring_in + 1) % SLOTS;
        pthread_mutex_unlock(&ring_lock);
        CHECK(sem_post(&full_slots) == 0);
    }
    for (int i = 0; i < CONSUMERS; i++) CHECK_RC(pthread_join(c[i], NULL), 0);
    long expected = 0;
    for (long id = 0; id < PRODUCERS; id++)
        for (long i = 0; i < ITEMS; i++) expected += id * 100000 + i;
    CHECK(consumed_count == PRODUCERS * ITEMS);
    CHECK(consumed_sum == expected);
    int v = -1;
    CHECK(sem_getvalue(&empty_slots, &v) == 0 && v == SLOTS);
    CHECK(sem_getvalue(&full_slots, &v) == 0 && v == 0);
    sem_destroy(&empty_slots);
    sem_destroy(&full_slots);
    printf("producer/consumer: %ld items, sum ok: %d\n", consumed_count, consumed_sum == expected);
}

int main(void) {
    program_start(60);
    basics();
    woken_in_time();
    producer_consumer();
    return program_end("semaphore");
}
