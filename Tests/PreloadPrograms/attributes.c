/* attributes.c — thread attributes and identity: pthread_attr_setstacksize
 * honoured (a thread uses ~1.5 MiB of stack in a 4 MiB attr), getstacksize,
 * detached threads (by attr and with pthread_detach), pthread_join return
 * values (return and pthread_exit), pthread_self/pthread_equal, two threads
 * alternating strictly with sched_yield. */
#include "check.h"
#include <limits.h>

/* --- stack size -------------------------------------------------------- */

/* Recursion with a 1 KiB frame each: depth 1536 is about 1.5 MiB. */
static long deep(int depth) {
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[1023] = (char)(depth >> 3);
    if (depth == 0) return frame[0] + frame[1023];
    return deep(depth - 1) + frame[0] + frame[1023];
}

static long expected_deep(int depth) {
    long sum = 0;
    for (int d = 0; d <= depth; d++) sum += (char)d + (char)(d >> 3);
    return sum;
}

static void *use_stack(void *arg) {
    int depth = (int)(intptr_t)arg;
    return (void *)(intptr_t)deep(depth);
}

static void stack_size(void) {
    pthread_attr_t attr;
    CHECK_RC(pthread_attr_init(&attr), 0);
    size_t size = 0;
    CHECK_RC(pthread_attr_setstacksize(&attr, 4u << 20), 0);
    CHECK_RC(pthread_attr_getstacksize(&attr, &size), 0);
    CHECK(size == 4u << 20);
    CHECK_RC(pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN - 1), EINVAL);
    pthread_t t;
    void *ret = NULL;
    CHECK_RC(pthread_create(&t, &attr, use_stack, (void *)(intptr_t)1536), 0);
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK((long)(intptr_t)ret == expected_deep(1536));
    CHECK_RC(pthread_attr_destroy(&attr), 0);

    /* A small explicit stack is fine for a thread that needs little. */
    CHECK_RC(pthread_attr_init(&attr), 0);
    CHECK_RC(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    CHECK_RC(pthread_create(&t, &attr, use_stack, (void *)(intptr_t)16), 0);
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK((long)(intptr_t)ret == expected_deep(16));
    CHECK_RC(pthread_attr_destroy(&attr), 0);

    /* The default stack (no attr) is big enough for the same 1.5 MiB. */
    CHECK_RC(pthread_create(&t, NULL, use_stack, (void *)(intptr_t)1536), 0);
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK((long)(intptr_t)ret == expected_deep(1536));
    printf("stack: 1.5 MiB used in a 4 MiB attr stack and in a default stack\n");
}

/* --- join values, self, equal ------------------------------------------ */

static pthread_t seen_self[8];

static void leave_with(long v) { pthread_exit((void *)(intptr_t)v); }

static void *identity(void *arg) {
    long i = (long)(intptr_t)arg;
    seen_self[i] = pthread_self();
    sleep_ms(5);
    CHECK(pthread_equal(pthread_self(), seen_self[i]));
    if (i % 2) leave_with(i * 7 + 1);   /* from a nested call */
    return (void *)(intptr_t)(i * 7);
}

static void join_and_identity(void) {
    pthread_t main_self = pthread_self();
    CHECK(pthread_equal(main_self, pthread_self()));
    CHECK_RC(pthread_join(pthread_self(), NULL), EDEADLK);
    pthread_t t[8];
    for (long i = 0; i < 8; i++) CHECK_RC(pthread_create(&t[i], NULL, identity, (void *)(intptr_t)i), 0);
    for (long i = 0; i < 8; i++) {
        void *ret = NULL;
        CHECK_RC(pthread_join(t[i], &ret), 0);
        CHECK((long)(intptr_t)ret == (i % 2 ? i * 7 + 1 : i * 7));
        CHECK(pthread_equal(t[i], seen_self[i]));
        CHECK(!pthread_equal(t[i], main_self));
        for (long j = 0; j < i; j++) CHECK(!pthread_equal(seen_self[i], seen_self[j]));
    }
    printf("join: return values and pthread_exit values; self/equal consistent\n");
}

/* --- detached ---------------------------------------------------------- */

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int detached_done;

static void *detached_worker(void *arg) {
    sleep_ms((long)(intptr_t)arg);
    pthread_mutex_lock(&done_lock);
    detached_done++;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&done_lock);
    return NULL;
}

static void *detach_myself(void *arg) {
    CHECK_RC(pthread_detach(pthread_self()), 0);
    return detached_worker(arg);
}

static void detached(void) {
    pthread_attr_t attr;
    CHECK_RC(pthread_attr_init(&attr), 0);
    int state = -1;
    CHECK_RC(pthread_attr_getdetachstate(&attr, &state), 0);
    CHECK(state == PTHREAD_CREATE_JOINABLE);
    CHECK_RC(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED), 0);
    CHECK_RC(pthread_attr_getdetachstate(&attr, &state), 0);
    CHECK(state == PTHREAD_CREATE_DETACHED);
    pthread_t t;
    for (long i = 0; i < 10; i++) CHECK_RC(pthread_create(&t, &attr, detached_worker, (void *)(intptr_t)(i % 3)), 0);
    CHECK_RC(pthread_attr_destroy(&attr), 0);
    for (long i = 0; i < 10; i++) {           /* detached after creation, running or not */
        CHECK_RC(pthread_create(&t, NULL, detached_worker, (void *)(intptr_t)(i % 2 ? 20 : 0)), 0);
        if (i % 4 == 0) sleep_ms(5);
        CHECK_RC(pthread_detach(t), 0);
    }
    for (long i = 0; i < 10; i++) CHECK_RC(pthread_create(&t, NULL, detach_myself, (void *)(intptr_t)1), 0);
    pthread_mutex_lock(&done_lock);
    struct timespec d = deadline_after(CLOCK_REALTIME, 10000);
    int rc = 0;
    while (detached_done < 30 && rc == 0) rc = pthread_cond_timedwait(&done_cond, &done_lock, &d);
    CHECK(detached_done == 30);
    pthread_mutex_unlock(&done_lock);
    printf("detached: %d of 30 detached threads finished\n", detached_done);
}

/* --- sched_yield ------------------------------------------------------- */

enum { TURNS = 2000 };
static int turn;                 /* whose turn: 0 or 1 */
static int log_[2 * TURNS], logged;

static void *alternate(void *arg) {
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < TURNS; i++) {
        while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != me) sched_yield();
        log_[logged++] = me;
        __atomic_store_n(&turn, 1 - me, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void yielding(void) {
    pthread_t a, b;
    CHECK_RC(pthread_create(&a, NULL, alternate, (void *)(intptr_t)0), 0);
    CHECK_RC(pthread_create(&b, NULL, alternate, (void *)(intptr_t)1), 0);
    CHECK_RC(pthread_join(a, NULL), 0);
    CHECK_RC(pthread_join(b, NULL), 0);
    CHECK(logged == 2 * TURNS);
    int strict = 1;
    for (int i = 0; i < logged; i++) if (log_[i] != i % 2) strict = 0;
    CHECK(strict);
    printf("sched_yield: %d turns, strictly alternating: %d\n", logged, strict);
}

int main(void) {
    program_start(60);
    stack_size();
    join_and_identity();
    detached();
    yielding();
    return program_end("attributes");
}
