/* mutex.c — mutex kinds: normal (static initializer, contended counter with
 * yields inside the critical section, trylock EBUSY), recursive (static
 * initializer and attr: lock twice, another thread stays blocked until the
 * second unlock), errorcheck (relock EDEADLK, unlock by non-owner EPERM),
 * pthread_mutex_timedlock expiring and succeeding. */
#include "check.h"

/* --- normal, contended ------------------------------------------------- */

enum { WORKERS = 8, ROUNDS = 300 };
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static int inside;   /* threads inside the critical section: must stay 0 or 1 */

static void *incrementer(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_RC(pthread_mutex_lock(&counter_lock), 0);
        CHECK(__atomic_add_fetch(&inside, 1, __ATOMIC_SEQ_CST) == 1);
        long seen = counter;
        /* Give the others every chance to run while we hold the lock. */
        if (i % 50 == 0) usleep(200); else sched_yield();
        counter = seen + 1;
        __atomic_sub_fetch(&inside, 1, __ATOMIC_SEQ_CST);
        CHECK_RC(pthread_mutex_unlock(&counter_lock), 0);
    }
    return NULL;
}

static void test_normal(void) {
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) CHECK_RC(pthread_create(&t[i], NULL, incrementer, NULL), 0);
    for (int i = 0; i < WORKERS; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK(counter == WORKERS * ROUNDS);
    printf("normal: counter %ld (expected %d)\n", counter, WORKERS * ROUNDS);

    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    int type = -1;
    CHECK_RC(pthread_mutexattr_gettype(&a, &type), 0);
    CHECK(type == PTHREAD_MUTEX_DEFAULT);
    pthread_mutexattr_destroy(&a);
}

/* --- a thread that tries to take a lock, reporting when it has it ------ */

struct taker { pthread_mutex_t *m; int got; };

static void *take_and_release(void *arg) {
    struct taker *t = arg;
    CHECK_RC(pthread_mutex_lock(t->m), 0);
    __atomic_store_n(&t->got, 1, __ATOMIC_SEQ_CST);
    CHECK_RC(pthread_mutex_unlock(t->m), 0);
    return NULL;
}

static void *trylock_busy(void *arg) {
    CHECK_RC(pthread_mutex_trylock((pthread_mutex_t *)arg), EBUSY);
    return NULL;
}

static void *unlock_not_owner(void *arg) {
    CHECK_RC(pthread_mutex_unlock((pthread_mutex_t *)arg), EPERM);
    return NULL;
}

static void run_in_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, fn, arg), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
}

/* --- recursive --------------------------------------------------------- */

static pthread_mutex_t static_recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static void recursive(const char *label, pthread_mutex_t *m) {
    CHECK_RC(pthread_mutex_lock(m), 0);
    CHECK_RC(pthread_mutex_lock(m), 0);
    CHECK_RC(pthread_mutex_trylock(m), 0);    /* the owner may take it again */
    run_in_thread(trylock_busy, m);           /* nobody else may */
    struct taker tk = { m, 0 };
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, take_and_release, &tk), 0);
    sleep_ms(30);
    CHECK(!__atomic_load_n(&tk.got, __ATOMIC_SEQ_CST));
    CHECK_RC(pthread_mutex_unlock(m), 0);
    CHECK_RC(pthread_mutex_unlock(m), 0);
    sleep_ms(30);
    CHECK(!__atomic_load_n(&tk.got, __ATOMIC_SEQ_CST));   /* still held once */
    CHECK_RC(pthread_mutex_unlock(m), 0);     /* now it is free */
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK(tk.got == 1);
    printf("%s: locked 3 times, other thread blocked until the last unlock\n", label);
}

/* --- errorcheck -------------------------------------------------------- */

static pthread_mutex_t static_errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;

static void errorcheck(const char *label, pthread_mutex_t *m) {
    CHECK_RC(pthread_mutex_unlock(m), EPERM);     /* not locked */
    CHECK_RC(pthread_mutex_lock(m), 0);
    CHECK_RC(pthread_mutex_lock(m), EDEADLK);     /* relock by the owner */
    CHECK_RC(pthread_mutex_trylock(m), EBUSY);
    run_in_thread(unlock_not_owner, m);           /* unlock by a non-owner */
    run_in_thread(trylock_busy, m);
    struct taker tk = { m, 0 };
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, take_and_release, &tk), 0);
    sleep_ms(30);
    CHECK(!__atomic_load_n(&tk.got, __ATOMIC_SEQ_CST));
    CHECK_RC(pthread_mutex_unlock(m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK(tk.got == 1);
    printf("%s: EDEADLK on relock, EPERM on foreign unlock\n", label);
}

/* --- trylock and timedlock -------------------------------------------- */

struct holder { pthread_mutex_t *m; long hold_ms; int locked; pthread_mutex_t state; pthread_cond_t cond; };

static void *hold_for_a_while(void *arg) {
    struct holder *h = arg;
    CHECK_RC(pthread_mutex_lock(h->m), 0);
    pthread_mutex_lock(&h->state);
    h->locked = 1;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->state);
    sleep_ms(h->hold_ms);
    CHECK_RC(pthread_mutex_unlock(h->m), 0);
    return NULL;
}

/* Start a thread that holds `m` for `ms`, and wait until it has it. */
static pthread_t start_holder(struct holder *h, pthread_mutex_t *m, long ms) {
    h->m = m;
    h->hold_ms = ms;
    h->locked = 0;
    pthread_mutex_init(&h->state, NULL);
    pthread_cond_init(&h->cond, NULL);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, hold_for_a_while, h), 0);
    pthread_mutex_lock(&h->state);
    while (!h->locked) pthread_cond_wait(&h->cond, &h->state);
    pthread_mutex_unlock(&h->state);
    return t;
}

static void test_try_and_timed(void) {
    pthread_mutex_t m;
    CHECK_RC(pthread_mutex_init(&m, NULL), 0);
    CHECK_RC(pthread_mutex_trylock(&m), 0);
    CHECK_RC(pthread_mutex_trylock(&m), EBUSY);
    run_in_thread(trylock_busy, &m);
    CHECK_RC(pthread_mutex_unlock(&m), 0);

    /* Expiring: the holder keeps it for 400 ms, we wait 100 ms. */
    struct holder h;
    pthread_t t = start_holder(&h, &m, 400);
    CHECK_RC(pthread_mutex_trylock(&m), EBUSY);
    struct timespec deadline = deadline_after(CLOCK_REALTIME, 100);
    CHECK_RC(pthread_mutex_timedlock(&m, &deadline), ETIMEDOUT);
    CHECK(ts_reached(ts_now(CLOCK_REALTIME), deadline));
    /* Succeeding: the holder lets go within 400 ms, our deadline is 10 s. */
    deadline = deadline_after(CLOCK_REALTIME, 10000);
    CHECK_RC(pthread_mutex_timedlock(&m, &deadline), 0);
    CHECK(!ts_reached(ts_now(CLOCK_REALTIME), deadline));
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    /* Free: a timedlock with a past deadline still takes a free mutex. */
    struct timespec past = ts_now(CLOCK_REALTIME);
    past.tv_sec -= 1;
    CHECK_RC(pthread_mutex_timedlock(&m, &past), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_mutex_destroy(&m), 0);
    printf("trylock EBUSY; timedlock ETIMEDOUT then success\n");
}

int main(void) {
    program_start(60);
    test_normal();

    recursive("static recursive", &static_recursive);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    CHECK_RC(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE), 0);
    pthread_mutex_t rec;
    CHECK_RC(pthread_mutex_init(&rec, &a), 0);
    recursive("attr recursive", &rec);
    CHECK_RC(pthread_mutex_destroy(&rec), 0);

    errorcheck("static errorcheck", &static_errorcheck);
    CHECK_RC(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK), 0);
    int type = -1;
    CHECK_RC(pthread_mutexattr_gettype(&a, &type), 0);
    CHECK(type == PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t ec;
    CHECK_RC(pthread_mutex_init(&ec, &a), 0);
    errorcheck("attr errorcheck", &ec);
    CHECK_RC(pthread_mutex_destroy(&ec), 0);
    pthread_mutexattr_destroy(&a);

    test_try_and_timed();
    return program_end("mutex");
}
