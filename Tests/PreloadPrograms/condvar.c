/* condvar.c — mutex + condition variable: a bounded producer/consumer queue
 * whose consumers use pthread_cond_timedwait, timed waits that expire and
 * timed waits woken in time, broadcast; once with a default (CLOCK_REALTIME)
 * condvar and once with a CLOCK_MONOTONIC condattr. */
#include "check.h"

enum { PRODUCERS = 4, CONSUMERS = 4, ITEMS_PER_PRODUCER = 2000, CAPACITY = 8 };

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    clockid_t clock;              /* the clock the condvars measure deadlines with */
    long items[CAPACITY];
    int head, count;
    int producers_left;
    long consumed_sum, consumed_count;
    long timeouts;                /* consumer waits that expired (allowed, just counted) */
};

static struct queue q;

static void *producer(void *arg) {
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < ITEMS_PER_PRODUCER; i++) {
        long value = id * 1000000 + i;
        pthread_mutex_lock(&q.lock);
        while (q.count == CAPACITY) pthread_cond_wait(&q.not_full, &q.lock);
        q.items[(q.head + q.count) % CAPACITY] = value;
        q.count++;
        pthread_cond_signal(&q.not_empty);
        pthread_mutex_unlock(&q.lock);
        if (i % 97 == 0) sched_yield();
    }
    pthread_mutex_lock(&q.lock);
    q.producers_left--;
    pthread_cond_broadcast(&q.not_empty);   /* consumers may finish */
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    long got = 0;
    pthread_mutex_lock(&q.lock);
    for (;;) {
        while (q.count == 0 && q.producers_left > 0) {
            /* A long deadline: normally a producer wakes us long before. */
            struct timespec deadline = deadline_after(q.clock, 2000);
            int rc = pthread_cond_timedwait(&q.not_empty, &q.lock, &deadline);
            if (rc == ETIMEDOUT) q.timeouts++;
            else CHECK_RC(rc, 0);
        }
        if (q.count == 0) break;   /* drained and no producer left */
        long value = q.items[q.head];
        q.head = (q.head + 1) % CAPACITY;
        q.count--;
        q.consumed_sum += value;
        q.consumed_count++;
        got++;
        pthread_cond_signal(&q.not_full);
        if (got % 101 == 0) {      /* let others in while we are between items */
            pthread_mutex_unlock(&q.lock);
            sched_yield();
            pthread_mutex_lock(&q.lock);
        }
    }
    pthread_mutex_unlock(&q.lock);
    return (void *)(intptr_t)got;
}

static void producer_consumer(const char *label) {
    q.head = q.count = 0;
    q.producers_left = PRODUCERS;
    q.consumed_sum = q.consumed_count = q.timeouts = 0;
    pthread_t p[PRODUCERS], c[CONSUMERS];
    for (long i = 0; i < CONSUMERS; i++) CHECK_RC(pthread_create(&c[i], NULL, consumer, (void *)(intptr_t)i), 0);
    for (long i = 0; i < PRODUCERS; i++) CHECK_RC(pthread_create(&p[i], NULL, producer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < PRODUCERS; i++) CHECK_RC(pthread_join(p[i], NULL), 0);
    long per_consumer_total = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        void *got = NULL;
        CHECK_RC(pthread_join(c[i], &got), 0);
        per_consumer_total += (long)(intptr_t)got;
    }
    long expected_sum = 0;
    for (long id = 0; id < PRODUCERS; id++)
        for (long i = 0; i < ITEMS_PER_PRODUCER; i++) expected_sum += id * 1000000 + i;
    CHECK(q.consumed_count == PRODUCERS * ITEMS_PER_PRODUCER);
    CHECK(per_consumer_total == PRODUCERS * ITEMS_PER_PRODUCER);
    CHECK(q.consumed_sum == expected_sum);
    printf("%s producer/consumer: %ld items, sum ok: %d\n", label, q.consumed_count, q.consumed_sum == expected_sum);
}

/* --- timed waits ------------------------------------------------------- */

static int flag;

static void *set_flag_later(void *arg) {
    (void)arg;
    sleep_ms(50);
    pthread_mutex_lock(&q.lock);
    flag = 1;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void timed_waits(const char *label) {
    /* 1. Nobody signals: the wait expires, no earlier than the deadline (on
     *    the condvar's own clock), and returns with the mutex held again. */
    pthread_mutex_lock(&q.lock);
    struct timespec deadline = deadline_after(q.clock, 100);
    int rc;
    do rc = pthread_cond_timedwait(&q.not_empty, &q.lock, &deadline); while (rc == 0);   /* spurious wake-ups */
    CHECK_RC(rc, ETIMEDOUT);
    CHECK(ts_reached(ts_now(q.clock), deadline));
    CHECK_RC(pthread_mutex_trylock(&q.lock), EBUSY);   /* still ours */
    pthread_mutex_unlock(&q.lock);

    /* 2. A deadline already in the past expires at once. */
    pthread_mutex_lock(&q.lock);
    struct timespec past = ts_now(q.clock);
    past.tv_sec -= 1;
    CHECK_RC(pthread_cond_timedwait(&q.not_empty, &q.lock, &past), ETIMEDOUT);
    pthread_mutex_unlock(&q.lock);

    /* 3. Woken in time: another thread signals after 50 ms, long before the
     *    10 s deadline. */
    flag = 0;
    pthread_t t;
    pthread_mutex_lock(&q.lock);
    CHECK_RC(pthread_create(&t, NULL, set_flag_later, NULL), 0);
    deadline = deadline_after(q.clock, 10000);
    rc = 0;
    while (!flag && rc == 0) rc = pthread_cond_timedwait(&q.not_empty, &q.lock, &deadline);
    CHECK_RC(rc, 0);
    CHECK(flag == 1);
    CHECK(!ts_reached(ts_now(q.clock), deadline));
    pthread_mutex_unlock(&q.lock);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("%s timed waits: expired, past deadline, woken in time\n", label);
}

/* --- broadcast --------------------------------------------------------- */

enum { WAITERS = 20 };
static int go, waiting, woken;

static void *broadcast_waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&q.lock);
    waiting++;
    pthread_cond_signal(&q.not_full);          /* tell main one more is waiting */
    while (!go) pthread_cond_wait(&q.not_empty, &q.lock);
    woken++;
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void broadcast(const char *label) {
    go = waiting = woken = 0;
    pthread_t t[WAITERS];
    for (int i = 0; i < WAITERS; i++) CHECK_RC(pthread_create(&t[i], NULL, broadcast_waiter, NULL), 0);
    pthread_mutex_lock(&q.lock);
    while (waiting < WAITERS) pthread_cond_wait(&q.not_full, &q.lock);
    CHECK(woken == 0);
    go = 1;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    for (int i = 0; i < WAITERS; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK(woken == WAITERS);
    printf("%s broadcast: %d of %d woken\n", label, woken, WAITERS);
}

static void run_all(const char *label, clockid_t clock) {
    pthread_condattr_t attr;
    CHECK_RC(pthread_condattr_init(&attr), 0);
    if (clock != CLOCK_REALTIME) CHECK_RC(pthread_condattr_setclock(&attr, clock), 0);
    clockid_t got;
    CHECK_RC(pthread_condattr_getclock(&attr, &got), 0);
    CHECK(got == clock);
    CHECK_RC(pthread_mutex_init(&q.lock, NULL), 0);
    /* The realtime run uses a default-initialised condvar (NULL attr). */
    CHECK_RC(pthread_cond_init(&q.not_empty, clock == CLOCK_REALTIME ? NULL : &attr), 0);
    CHECK_RC(pthread_cond_init(&q.not_full, clock == CLOCK_REALTIME ? NULL : &attr), 0);
    pthread_condattr_destroy(&attr);
    q.clock = clock;

    producer_consumer(label);
    timed_waits(label);
    broadcast(label);

    CHECK_RC(pthread_cond_destroy(&q.not_empty), 0);
    CHECK_RC(pthread_cond_destroy(&q.not_full), 0);
    CHECK_RC(pthread_mutex_destroy(&q.lock), 0);
}

/* A statically initialised condvar works too. */
static pthread_mutex_t static_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t static_cond = PTHREAD_COND_INITIALIZER;
static int static_ready;

static void *static_signaller(void *arg) {
    (void)arg;
    sleep_ms(20);
    pthread_mutex_lock(&static_lock);
    static_ready = 1;
    pthread_cond_signal(&static_cond);
    pthread_mutex_unlock(&static_lock);
    return NULL;
}

int main(void) {
    program_start(60);
    run_all("realtime", CLOCK_REALTIME);
    run_all("monotonic", CLOCK_MONOTONIC);

    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, static_signaller, NULL), 0);
    pthread_mutex_lock(&static_lock);
    while (!static_ready) pthread_cond_wait(&static_cond, &static_lock);
    pthread_mutex_unlock(&static_lock);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("static initializers: ok\n");
    return program_end("condvar");
}
