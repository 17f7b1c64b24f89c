/* rwlock.c — reader/writer locks: many readers hold the lock at the same
 * time, a writer excludes readers (and readers the writer), tryrdlock and
 * trywrlock return EBUSY, timedrdlock/timedwrlock expire (ETIMEDOUT) and
 * succeed, static initializer, a contended read-mostly workload. */
#include "check.h"

enum { READERS = 20 };

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t state_cond = PTHREAD_COND_INITIALIZER;
static int readers_in, max_readers_in, release_readers;
static int writer_in, release_writer;

/* Each reader takes the read lock and waits until all READERS hold it at
 * once (proof they are concurrent), then waits to be released. */
static void *reader(void *arg) {
    (void)arg;
    CHECK_RC(pthread_rwlock_rdlock(&rw), 0);
    pthread_mutex_lock(&state_lock);
    CHECK(!writer_in);
    readers_in++;
    if (readers_in > max_readers_in) max_readers_in = readers_in;
    pthread_cond_broadcast(&state_cond);
    while (!release_readers) pthread_cond_wait(&state_cond, &state_lock);
    readers_in--;
    pthread_mutex_unlock(&state_lock);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

static void *writer(void *arg) {
    (void)arg;
    CHECK_RC(pthread_rwlock_wrlock(&rw), 0);
    pthread_mutex_lock(&state_lock);
    CHECK(readers_in == 0);
    writer_in = 1;
    pthread_cond_broadcast(&state_cond);
    while (!release_writer) pthread_cond_wait(&state_cond, &state_lock);
    writer_in = 0;
    pthread_mutex_unlock(&state_lock);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

static void *expect_trywrlock_busy(void *arg) { (void)arg; CHECK_RC(pthread_rwlock_trywrlock(&rw), EBUSY); return NULL; }
static void *expect_tryrdlock_busy(void *arg) { (void)arg; CHECK_RC(pthread_rwlock_tryrdlock(&rw), EBUSY); return NULL; }
static void *expect_tryrdlock_ok(void *arg) {
    (void)arg;
    CHECK_RC(pthread_rwlock_tryrdlock(&rw), 0);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

static void *timed_wr_expires(void *arg) {
    (void)arg;
    struct timespec d = deadline_after(CLOCK_REALTIME, 100);
    CHECK_RC(pthread_rwlock_timedwrlock(&rw, &d), ETIMEDOUT);
    CHECK(ts_reached(ts_now(CLOCK_REALTIME), d));
    return NULL;
}

static void *timed_rd_expires(void *arg) {
    (void)arg;
    struct timespec d = deadline_after(CLOCK_REALTIME, 100);
    CHECK_RC(pthread_rwlock_timedrdlock(&rw, &d), ETIMEDOUT);
    CHECK(ts_reached(ts_now(CLOCK_REALTIME), d));
    return NULL;
}

static void run_in_thread(void *(*fn)(void *)) {
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, fn, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
}

static void readers_and_writer(void) {
    pthread_t r[READERS], w;
    for (int i = 0; i < READERS; i++) CHECK_RC(pthread_create(&r[i], NULL, reader, NULL), 0);
    /* Wait (with a generous bound) until every reader holds the lock. */
    pthread_mutex_lock(&state_lock);
    struct timespec d = deadline_after(CLOCK_REALTIME, 10000);
    int rc = 0;
    while (readers_in < READERS && rc == 0) rc = pthread_cond_timedwait(&state_cond, &state_lock, &d);
    CHECK(readers_in == READERS);
    pthread_mutex_unlock(&state_lock);

    /* Readers hold it: writers cannot get in, more readers can. */
    run_in_thread(expect_trywrlock_busy);
    run_in_thread(timed_wr_expires);
    run_in_thread(expect_tryrdlock_ok);

    /* A writer blocks until every reader has left. */
    CHECK_RC(pthread_create(&w, NULL, writer, NULL), 0);
    sleep_ms(50);
    pthread_mutex_lock(&state_lock);
    CHECK(!writer_in);
    release_readers = 1;
    pthread_cond_broadcast(&state_cond);
    /* ...then gets in. */
    rc = 0;
    d = deadline_after(CLOCK_REALTIME, 10000);
    while (!writer_in && rc == 0) rc = pthread_cond_timedwait(&state_cond, &state_lock, &d);
    CHECK(writer_in);
    pthread_mutex_unlock(&state_lock);
    /* The writer holds it: readers and writers are kept out. */
    run_in_thread(expect_tryrdlock_busy);
    run_in_thread(expect_trywrlock_busy);
    run_in_thread(timed_rd_expires);
    pthread_mutex_lock(&state_lock);
    release_writer = 1;
    pthread_cond_broadcast(&state_cond);
    pthread_mutex_unlock(&state_lock);
    for (int i = 0; i < READERS; i++) CHECK_RC(pthread_join(r[i], NULL), 0);
    CHECK_RC(pthread_join(w, NULL), 0);
    CHECK(max_readers_in == READERS);
    printf("readers: %d held the lock at once; writer excluded them\n", max_readers_in);
}

static void *hold_write_400ms(void *arg) {
    int *locked = arg;
    CHECK_RC(pthread_rwlock_wrlock(&rw), 0);
    __atomic_store_n(locked, 1, __ATOMIC_SEQ_CST);
    sleep_ms(400);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

static void timed_variants(void) {
    /* A writer holds the lock: timed reads and writes expire, then succeed
     * once it lets go. */
    int locked = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, hold_write_400ms, &locked), 0);
    while (!__atomic_load_n(&locked, __ATOMIC_SEQ_CST)) sleep_ms(1);
    timed_rd_expires(NULL);
    timed_wr_expires(NULL);
    struct timespec d = deadline_after(CLOCK_REALTIME, 10000);
    CHECK_RC(pthread_rwlock_timedrdlock(&rw, &d), 0);
    CHECK(!ts_reached(ts_now(CLOCK_REALTIME), d));
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    d = deadline_after(CLOCK_REALTIME, 10000);
    CHECK_RC(pthread_rwlock_timedwrlock(&rw, &d), 0);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    printf("timed: rd/wr expire while a writer holds it, then succeed\n");
}

/* Read-mostly workload: readers check an invariant writers keep. */
enum { WORKERS = 8, OPS = 400 };
static pthread_rwlock_t data_lock;
static long a_value, b_value;   /* invariant: a_value + b_value == 0 */

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < OPS; i++) {
        if ((i + id) % 8 == 0) {
            CHECK_RC(pthread_rwlock_wrlock(&data_lock), 0);
            a_value++;
            sched_yield();          /* others try to get in while we are mid-update */
            b_value--;
            CHECK_RC(pthread_rwlock_unlock(&data_lock), 0);
        } else {
            CHECK_RC(pthread_rwlock_rdlock(&data_lock), 0);
            long a = a_value;
            sched_yield();
            CHECK(a + b_value == 0);
            CHECK_RC(pthread_rwlock_unlock(&data_lock), 0);
        }
    }
    return NULL;
}

static void workload(void) {
    pthread_rwlockattr_t attr;
    CHECK_RC(pthread_rwlockattr_init(&attr), 0);
    CHECK_RC(pthread_rwlock_init(&data_lock, &attr), 0);
    pthread_rwlockattr_destroy(&attr);
    pthread_t t[WORKERS];
    for (long i = 0; i < WORKERS; i++) CHECK_RC(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WORKERS; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK(a_value == WORKERS * OPS / 8);
    CHECK(a_value + b_value == 0);
    CHECK_RC(pthread_rwlock_destroy(&data_lock), 0);
    printf("workload: %ld writes, invariant held\n", a_value);
}

int main(void) {
    program_start(60);
    readers_and_writer();
    timed_variants();
    workload();
    return program_end("rwlock");
}
