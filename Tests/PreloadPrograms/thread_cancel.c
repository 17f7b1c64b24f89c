/* thread_cancel.c — pthread_cancel as glibc does it (deferred cancellation):
 *  - a thread parked in a cancellation point (sleep, nanosleep, read of a
 *    pipe, poll, accept, pthread_cond_wait, pthread_cond_timedwait,
 *    sem_wait, pthread_join) is cancelled: its pthread_cleanup_push handlers
 *    run in reverse order of pushing, then its key destructors, and
 *    pthread_join returns PTHREAD_CANCELED; the code after the call never runs;
 *  - pthread_cond_wait's cleanup handler runs with the mutex held again;
 *  - pthread_mutex_lock is not a cancellation point;
 *  - PTHREAD_CANCEL_DISABLE defers a cancel until it is enabled again and
 *    the thread reaches a cancellation point; pthread_testcancel acts in a
 *    loop that makes no other cancellation point;
 *  - a detached thread is cancelled too (its handlers run);
 *  - cleanup_pop(1) runs a handler, cleanup_pop(0) does not.
 * If pthread_cancel itself fails, the scenario says so and goes on (the
 * thread is left behind) instead of hanging in its join. */
#include "check.h"
#include <netinet/in.h>
#include <poll.h>
#include <semaphore.h>
#include <sys/socket.h>

/* What one scenario's thread did, in order: "push-a", "c", … */
static char events[512];
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

static void record(const char *what) {
    pthread_mutex_lock(&events_lock);
    if (events[0]) strncat(events, " ", sizeof events - strlen(events) - 1);
    strncat(events, what, sizeof events - strlen(events) - 1);
    pthread_mutex_unlock(&events_lock);
}

static void cleanup(void *what) { record((const char *)what); }

static pthread_key_t key;
static void key_destructor(void *value) { record((const char *)value); }

static volatile int ready;
static void wait_ready(void) {
    for (int i = 0; i < 10000 && !__atomic_load_n(&ready, __ATOMIC_SEQ_CST); i++) sleep_ms(1);
    CHECK(__atomic_load_n(&ready, __ATOMIC_SEQ_CST));
}
static void set_ready(void) { __atomic_store_n(&ready, 1, __ATOMIC_SEQ_CST); }

/* The blocking calls a thread is cancelled in. */
enum point { P_SLEEP, P_NANOSLEEP, P_READ, P_POLL, P_ACCEPT, P_COND_WAIT, P_COND_TIMEDWAIT, P_SEM_WAIT, P_JOIN, P_COUNT };
static const char *point_names[P_COUNT] = {
    "sleep", "nanosleep", "read", "poll", "accept", "pthread_cond_wait", "pthread_cond_timedwait", "sem_wait",
    "pthread_join"};

static int pipe_fds[2];
static int listener;
static pthread_mutex_t cond_lock;  /* errorcheck: the cleanup handler can tell it holds it */
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static sem_t sem;
static pthread_t never_ending;
static volatile int never_ending_release;
static int cond_cleanup_held;
static int left_behind; /* a thread still blocked (pthread_cancel failed): one joins never_ending */

static void *never_ends(void *arg) {
    while (!__atomic_load_n(&never_ending_release, __ATOMIC_SEQ_CST)) sleep_ms(2);
    return arg;
}

/* pthread_cond_wait's handler: the mutex is ours again; unlock it. */
static void cond_cleanup(void *arg) {
    (void)arg;
    cond_cleanup_held = pthread_mutex_lock(&cond_lock) == EDEADLK;
    record("unlock");
    pthread_mutex_unlock(&cond_lock);
}

static void *cancelled_in(void *arg) {
    enum point p = (enum point)(intptr_t)arg;
    pthread_setspecific(key, "key-destructor");
    pthread_cleanup_push(cleanup, "a");
    pthread_cleanup_push(cleanup, "b");
    pthread_cleanup_push(cleanup, "c");
    record("blocking");
    char byte;
    struct timespec long_time = {600, 0};
    switch (p) {
    case P_SLEEP:
        set_ready();
        sleep(600);
        break;
    case P_NANOSLEEP:
        set_ready();
        nanosleep(&long_time, NULL);
        break;
    case P_READ:
        set_ready();
        (void)!read(pipe_fds[0], &byte, 1);
        break;
    case P_POLL: {
        struct pollfd pfd = {.fd = pipe_fds[0], .events = POLLIN};
        set_ready();
        poll(&pfd, 1, 600000);
        break;
    }
    case P_ACCEPT:
        set_ready();
        accept(listener, NULL, NULL);
        break;
    case P_COND_WAIT:
    case P_COND_TIMEDWAIT:
        pthread_mutex_lock(&cond_lock);
        pthread_cleanup_push(cond_cleanup, NULL);
        set_ready();
        for (;;) {
            if (p == P_COND_WAIT) pthread_cond_wait(&cond, &cond_lock);
            else {
                struct timespec deadline = deadline_after(CLOCK_REALTIME, 600000);
                pthread_cond_timedwait(&cond, &cond_lock, &deadline);
            }
        }
        pthread_cleanup_pop(1);
        break;
    case P_SEM_WAIT:
        set_ready();
        sem_wait(&sem);
        break;
    case P_JOIN:
        set_ready();
        pthread_join(never_ending, NULL);
        break;
    default:
        break;
    }
    record("FAIL-returned");
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

/* Cancels a thread in `p`; returns whether the scenario went as natively. */
static int cancel_in(enum point p) {
    events[0] = 0;
    ready = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, cancelled_in, (void *)(intptr_t)p), 0);
    wait_ready();
    sleep_ms(20);  /* into the call, most likely (either way it is cancelled there) */
    int rc = pthread_cancel(t);
    CHECK_RC(rc, 0);
    if (rc != 0) {
        left_behind = 1;
        printf("cancelled in %s: pthread_cancel returned %d (%s); thread left behind\n", point_names[p], rc, strerror(rc));
        return 0;
    }
    void *ret = NULL;
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    const char *want = p == P_COND_WAIT || p == P_COND_TIMEDWAIT ? "blocking unlock c b a key-destructor"
                                                                  : "blocking c b a key-destructor";
    int ok = ret == PTHREAD_CANCELED && strcmp(events, want) == 0;
    if (strcmp(events, want) != 0) {
        printf("FAIL cancelled in %s: events \"%s\", expected \"%s\"\n", point_names[p], events, want);
        check_failures++;
    }
    if (p == P_COND_WAIT || p == P_COND_TIMEDWAIT) {
        CHECK(cond_cleanup_held);
        ok = ok && cond_cleanup_held;
        CHECK_RC(pthread_mutex_trylock(&cond_lock), 0);  /* the handler released it */
        pthread_mutex_unlock(&cond_lock);
    }
    printf("cancelled in %s: %s, join PTHREAD_CANCELED\n", point_names[p], events);
    return ok;
}

/* pthread_mutex_lock is not a cancellation point: the thread gets the lock,
 * and the cancel acts at its next cancellation point. */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *locker(void *arg) {
    pthread_cleanup_push(cleanup, "cleanup");
    set_ready();
    pthread_mutex_lock(&held);
    record("locked");
    pthread_mutex_unlock(&held);
    pthread_testcancel();
    record("FAIL-after-testcancel");
    pthread_cleanup_pop(0);
    return arg;
}

static void mutex_lock_is_not_a_cancellation_point(void) {
    events[0] = 0;
    ready = 0;
    pthread_mutex_lock(&held);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, locker, NULL), 0);
    wait_ready();
    sleep_ms(20);
    int rc = pthread_cancel(t);
    CHECK_RC(rc, 0);
    sleep_ms(20);
    pthread_mutex_unlock(&held);
    if (rc != 0) {
        printf("pthread_mutex_lock: pthread_cancel returned %d (%s)\n", rc, strerror(rc));
        return;
    }
    void *ret = NULL;
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    CHECK(strcmp(events, "locked cleanup") == 0);
    printf("pthread_mutex_lock is not a cancellation point: %s\n", events);
}

/* PTHREAD_CANCEL_DISABLE: the cancel waits; enabling it does not act by
 * itself, the next cancellation point does. */
static volatile int cancel_sent;

static void *disabled(void *arg) {
    int old = -1;
    CHECK_RC(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old), 0);
    CHECK(old == PTHREAD_CANCEL_ENABLE);
    pthread_cleanup_push(cleanup, "cleanup");
    set_ready();
    while (!__atomic_load_n(&cancel_sent, __ATOMIC_SEQ_CST)) sleep_ms(1);  /* sleeps: cancellation points */
    sleep_ms(10);
    record("survived");
    CHECK_RC(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old), 0);
    CHECK(old == PTHREAD_CANCEL_DISABLE);
    record("enabled");
    pthread_testcancel();
    record("FAIL-after-testcancel");
    pthread_cleanup_pop(0);
    return arg;
}

static void disable_defers_the_cancel(void) {
    events[0] = 0;
    ready = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, disabled, NULL), 0);
    wait_ready();
    int rc = pthread_cancel(t);
    CHECK_RC(rc, 0);
    __atomic_store_n(&cancel_sent, 1, __ATOMIC_SEQ_CST);
    if (rc != 0) {
        printf("PTHREAD_CANCEL_DISABLE: pthread_cancel returned %d (%s)\n", rc, strerror(rc));
        return;
    }
    void *ret = NULL;
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    CHECK(strcmp(events, "survived enabled cleanup") == 0);
    printf("PTHREAD_CANCEL_DISABLE defers the cancel to the next cancellation point: %s\n", events);
}

/* pthread_testcancel in a loop whose only other call is sched_yield. */
static void *spinner(void *arg) {
    pthread_cleanup_push(cleanup, "cleanup");
    set_ready();
    unsigned long spins = 0;
    for (;;) {
        pthread_testcancel();
        sched_yield();
        if (++spins == 1) record("spinning");
    }
    pthread_cleanup_pop(0);
    return arg;
}

static void testcancel_acts(void) {
    events[0] = 0;
    ready = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, spinner, NULL), 0);
    wait_ready();
    sleep_ms(10);
    int rc = pthread_cancel(t);
    CHECK_RC(rc, 0);
    if (rc != 0) {
        printf("pthread_testcancel: pthread_cancel returned %d (%s); thread left spinning\n", rc, strerror(rc));
        return;
    }
    void *ret = NULL;
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK(ret == PTHREAD_CANCELED);
    CHECK(strcmp(events, "spinning cleanup") == 0);
    printf("pthread_testcancel in a yielding loop: %s\n", events);
}

/* A detached thread: nobody joins it, its handlers still run. */
static volatile int detached_done;
static void detached_cleanup(void *arg) {
    record((const char *)arg);
    __atomic_store_n(&detached_done, 1, __ATOMIC_SEQ_CST);
}

static void *detached_sleeper(void *arg) {
    pthread_cleanup_push(detached_cleanup, "cleanup");
    set_ready();
    sleep(600);
    record("FAIL-returned");
    pthread_cleanup_pop(0);
    return arg;
}

static void detached_thread_cancelled(void) {
    events[0] = 0;
    ready = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, detached_sleeper, NULL), 0);
    CHECK_RC(pthread_detach(t), 0);
    wait_ready();
    int rc = pthread_cancel(t);
    CHECK_RC(rc, 0);
    if (rc != 0) {
        printf("detached thread: pthread_cancel returned %d (%s)\n", rc, strerror(rc));
        return;
    }
    for (int i = 0; i < 10000 && !__atomic_load_n(&detached_done, __ATOMIC_SEQ_CST); i++) sleep_ms(1);
    CHECK(detached_done);
    sleep_ms(10);
    CHECK(strcmp(events, "cleanup") == 0);
    printf("detached thread cancelled in sleep: %s\n", events);
}

/* cleanup_pop(1) runs the handler, cleanup_pop(0) drops it; pthread_exit
 * runs those still pushed. */
static void *popper(void *arg) {
    pthread_cleanup_push(cleanup, "outer");
    pthread_cleanup_push(cleanup, "dropped");
    pthread_cleanup_push(cleanup, "popped");
    pthread_cleanup_pop(1);
    pthread_cleanup_pop(0);
    record("exiting");
    pthread_exit((void *)(intptr_t)7);
    pthread_cleanup_pop(0);
    return arg;
}

static void cleanup_pop_and_exit(void) {
    events[0] = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, popper, NULL), 0);
    void *ret = NULL;
    CHECK_RC(pthread_join(t, &ret), 0);
    CHECK((intptr_t)ret == 7);
    CHECK(strcmp(events, "popped exiting outer") == 0);
    printf("cleanup_pop(1), cleanup_pop(0), pthread_exit: %s\n", events);
}

int main(void) {
    program_start(30);
    CHECK_RC(pthread_key_create(&key, key_destructor), 0);
    CHECK(pipe(pipe_fds) == 0);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(listener, (struct sockaddr *)&a, sizeof a) == 0 && listen(listener, 8) == 0);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&cond_lock, &ma);
    sem_init(&sem, 0, 0);
    CHECK_RC(pthread_create(&never_ending, NULL, never_ends, NULL), 0);

    int passed = 0;
    for (int p = 0; p < P_COUNT; p++) passed += cancel_in((enum point)p);
    printf("cancellation points: %d of %d as natively\n", passed, P_COUNT);
    mutex_lock_is_not_a_cancellation_point();
    disable_defers_the_cancel();
    testcancel_acts();
    detached_thread_cancelled();
    cleanup_pop_and_exit();

    __atomic_store_n(&never_ending_release, 1, __ATOMIC_SEQ_CST);
    if (!left_behind) CHECK_RC(pthread_join(never_ending, NULL), 0);
    return program_end("thread_cancel");
}
