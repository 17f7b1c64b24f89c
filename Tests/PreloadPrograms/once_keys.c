/* once_keys.c — pthread_once raced by many threads (the init routine sleeps,
 * so the others must wait for it rather than run it again or go on early),
 * and thread-specific data: per-thread values, destructors at thread exit
 * (return and pthread_exit) with that thread's value, re-set values in a
 * destructor, key deletion. */
#include "check.h"

enum { RACERS = 50, KEY_THREADS = 40 };

/* --- pthread_once ------------------------------------------------------ */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_runs, initialized;
static int observed_initialized;   /* how many racers saw the init finished */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void init_routine(void) {
    __atomic_add_fetch(&init_runs, 1, __ATOMIC_SEQ_CST);
    sleep_ms(100);   /* the other racers arrive meanwhile */
    __atomic_store_n(&initialized, 1, __ATOMIC_SEQ_CST);
}

static void *racer(void *arg) {
    (void)arg;
    pthread_mutex_lock(&gate_lock);            /* start together */
    while (!gate_open) pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    CHECK_RC(pthread_once(&once, init_routine), 0);
    if (__atomic_load_n(&initialized, __ATOMIC_SEQ_CST)) __atomic_add_fetch(&observed_initialized, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_once(void) {
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) CHECK_RC(pthread_create(&t[i], NULL, racer, NULL), 0);
    pthread_mutex_lock(&gate_lock);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
    for (int i = 0; i < RACERS; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK(init_runs == 1);
    CHECK(observed_initialized == RACERS);
    /* Once done, it stays done. */
    CHECK_RC(pthread_once(&once, init_routine), 0);
    CHECK(init_runs == 1);
    printf("once: init ran %d time(s), %d of %d racers saw it finished\n", init_runs, observed_initialized, RACERS);
}

/* --- keys -------------------------------------------------------------- */

static pthread_key_t key, key2;
static pthread_mutex_t results_lock = PTHREAD_MUTEX_INITIALIZER;
static int destructor_calls;
static int destroyed_for[KEY_THREADS];   /* how often each thread's value was destroyed */
static int key2_calls;

struct value { int owner; };

static void destructor(void *p) {
    struct value *v = p;
    pthread_mutex_lock(&results_lock);
    destructor_calls++;
    if (v->owner >= 0 && v->owner < KEY_THREADS) destroyed_for[v->owner]++;
    pthread_mutex_unlock(&results_lock);
    /* The destructor runs with the key's value already cleared. */
    CHECK(pthread_getspecific(key) == NULL);
    free(v);
}

/* key2's destructor sets a new value the first time: POSIX then calls it
 * again (up to PTHREAD_DESTRUCTOR_ITERATIONS rounds). */
static void destructor2(void *p) {
    pthread_mutex_lock(&results_lock);
    key2_calls++;
    pthread_mutex_unlock(&results_lock);
    if ((intptr_t)p == 1) pthread_setspecific(key2, (void *)(intptr_t)2);
}

static void finish_with_pthread_exit(void) { pthread_exit((void *)(intptr_t)77); }

static void *key_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    CHECK(pthread_getspecific(key) == NULL);   /* a new thread starts with NULL */
    struct value *v = malloc(sizeof *v);
    v->owner = id;
    CHECK_RC(pthread_setspecific(key, v), 0);
    for (int round = 0; round < 3; round++) {
        sleep_ms(5);                             /* other threads set theirs meanwhile */
        CHECK(pthread_getspecific(key) == v);
        CHECK(((struct value *)pthread_getspecific(key))->owner == id);
    }
    if (id == 0) CHECK_RC(pthread_setspecific(key2, (void *)(intptr_t)1), 0);
    if (id % 10 == 9) {                          /* NULL value: no destructor call */
        CHECK_RC(pthread_setspecific(key, NULL), 0);
        free(v);
    }
    if (id % 2 == 1) finish_with_pthread_exit();
    return (void *)(intptr_t)77;
}

static void test_keys(void) {
    CHECK_RC(pthread_key_create(&key, destructor), 0);
    CHECK_RC(pthread_key_create(&key2, destructor2), 0);
    CHECK(key != key2);
    static int main_value;
    CHECK(pthread_getspecific(key) == NULL);
    CHECK_RC(pthread_setspecific(key, &main_value), 0);

    pthread_t t[KEY_THREADS];
    for (int i = 0; i < KEY_THREADS; i++) CHECK_RC(pthread_create(&t[i], NULL, key_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < KEY_THREADS; i++) {
        void *ret = NULL;
        CHECK_RC(pthread_join(t[i], &ret), 0);
        CHECK(ret == (void *)(intptr_t)77);
    }
    int expected_calls = 0;
    for (int i = 0; i < KEY_THREADS; i++) {
        int expected = i % 10 == 9 ? 0 : 1;
        expected_calls += expected;
        if (destroyed_for[i] != expected) printf("thread %d: destructor ran %d time(s), expected %d\n", i, destroyed_for[i], expected);
        CHECK(destroyed_for[i] == expected);
    }
    CHECK(destructor_calls == expected_calls);
    CHECK(key2_calls == 2);
    /* Main's own value is untouched by the other threads. */
    CHECK(pthread_getspecific(key) == &main_value);
    CHECK_RC(pthread_setspecific(key, NULL), 0);

    CHECK_RC(pthread_key_delete(key), 0);
    CHECK_RC(pthread_key_delete(key2), 0);
    /* Keys can be created again after deletion, and start out NULL. */
    pthread_key_t again;
    CHECK_RC(pthread_key_create(&again, NULL), 0);
    CHECK(pthread_getspecific(again) == NULL);
    CHECK_RC(pthread_setspecific(again, &main_value), 0);
    CHECK(pthread_getspecific(again) == &main_value);
    CHECK_RC(pthread_key_delete(again), 0);
    printf("keys: %d destructor calls with each thread's own value, re-set value destroyed %d times\n",
           destructor_calls, key2_calls);
}

int main(void) {
    program_start(60);
    test_once();
    test_keys();
    return program_end("once_keys");
}
