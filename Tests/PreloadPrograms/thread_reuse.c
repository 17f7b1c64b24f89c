/* thread_reuse.c — a thread made after another one ended starts as a new
 * thread, whatever the one before left behind. Threads run one after
 * another (so each may get the stack, descriptor and TLS block of the one
 * before: glibc's stack cache reuses them, and so does the preload library),
 * and each finds what a new thread finds, then leaves a mess for the next:
 * `__thread` variables (initialised and zeroed ones) at their initial
 * values, errno 0, the global locale, no pthread key or C11 tss values (and
 * each tss destructor ran when its thread ended; nor values set through
 * libc's own pthread_setspecific, found with dlsym), the dynamic TLS
 * of a library dlopen'ed earlier (argv[1]: dlopen_tls_module.c) at its
 * initial value, cancellation enabled and deferred and not requested (the
 * one before was cancelled, or set its cancel state and type otherwise).
 * 20,000 threads that each use the library's dynamic TLS leave malloc's
 * bytes in use about where they were (each allocates that TLS block anew). */
#include "check.h"
#include <dlfcn.h>
#include <locale.h>
#include <malloc.h>
#include <threads.h>

#define ROUNDS 200
#define LEAK_THREADS 20000
#define TSS_KEYS 40 /* past glibc's first 32, kept in its descriptor */

static __thread int zeroed;             /* .tbss */
static __thread int initialised = 42;   /* .tdata */
static __thread char scratch[256];      /* .tbss, larger than a cache line */
static pthread_key_t key;
static tss_t tss[TSS_KEYS];
static int tss_destroyed;

static void tss_destructor(void *value) {
    if (value == &tss_destroyed) __atomic_add_fetch(&tss_destroyed, 1, __ATOMIC_SEQ_CST);
}
static int (*bump_dynamic)(void);
static void *(*libc_getspecific)(pthread_key_t);
static int (*libc_setspecific)(pthread_key_t, const void *);
static pthread_key_t libc_keys[2]; /* one kept in glibc's descriptor, one past its first 32 */
static locale_t c_locale;
static int waiting; /* set by a worker about to be cancelled in pause() */

/* What every new thread must find; then the mess it leaves (how it ends
 * depends on `round`: returning, cancelled, after pthread_exit). */
static void *worker(void *arg) {
    int round = (int)(intptr_t)arg;
    int ok = zeroed == 0 && initialised == 42 && scratch[0] == 0 && scratch[255] == 0;
    CHECK(ok);
    CHECK(errno == 0);
    CHECK(uselocale((locale_t)0) == LC_GLOBAL_LOCALE);
    CHECK(pthread_getspecific(key) == NULL);
    for (int k = 0; k < 2; k++) CHECK(libc_getspecific(libc_keys[k]) == NULL);
    int tss_clean = 1;
    for (int k = 0; k < TSS_KEYS; k++) tss_clean &= tss_get(tss[k]) == NULL;
    CHECK(tss_clean);
    CHECK(bump_dynamic() == 101); /* its first use: a block of its own, from the initial value */
    int state = -1, type = -1;
    CHECK_RC(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &state), 0);
    CHECK_RC(pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type), 0);
    CHECK(state == PTHREAD_CANCEL_ENABLE && type == PTHREAD_CANCEL_DEFERRED);
    pthread_testcancel(); /* nothing requested: returns */

    zeroed = 7;
    initialised = 8;
    memset(scratch, 'x', sizeof scratch);
    errno = EIO;
    uselocale(c_locale);
    pthread_setspecific(key, &key);
    for (int k = 0; k < TSS_KEYS; k++) CHECK(tss_set(tss[k], &tss_destroyed) == thrd_success);
    for (int k = 0; k < 2; k++) CHECK_RC(libc_setspecific(libc_keys[k], &key), 0);
    for (int i = 0; i < 5; i++) bump_dynamic();
    switch (round % 4) {
    case 0: /* cancelled while it waits */
        __atomic_store_n(&waiting, 1, __ATOMIC_SEQ_CST);
        for (;;) pause();
    case 1: /* leaves with cancellation disabled and asynchronous */
        pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        return (void *)(intptr_t)round;
    case 2:
        pthread_exit((void *)(intptr_t)round);
    default: /* cancelled at its own request point */
        pthread_cancel(pthread_self());
        pthread_testcancel();
        return NULL;
    }
}

/* A thread that only uses the library's dynamic TLS once. */
static void *touch(void *arg) {
    (void)arg;
    return (void *)(intptr_t)(bump_dynamic() == 101);
}

int main(int argc, char **argv) {
    program_start(120);
    if (argc < 2) {
        printf("usage: thread_reuse DYNAMIC_TLS_MODULE\n");
        return 2;
    }
    void *module = dlopen(argv[1], RTLD_NOW);
    if (!module) {
        printf("FAIL dlopen: %s\n", dlerror());
        return 1;
    }
    bump_dynamic = (int (*)(void))dlsym(module, "bump_dynamic");
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!bump_dynamic || c_locale == (locale_t)0) {
        printf("FAIL dlsym or newlocale\n");
        return 1;
    }
    CHECK_RC(pthread_key_create(&key, NULL), 0);
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    libc_getspecific = libc ? (void *(*)(pthread_key_t))dlsym(libc, "pthread_getspecific") : NULL;
    libc_setspecific = libc ? (int (*)(pthread_key_t, const void *))dlsym(libc, "pthread_setspecific") : NULL;
    if (!libc_getspecific || !libc_setspecific) {
        printf("FAIL libc's pthread_getspecific/setspecific not found\n");
        return 1;
    }
    CHECK_RC(pthread_key_create(&libc_keys[0], NULL), 0);
    for (int k = 0; k < TSS_KEYS; k++) CHECK(tss_create(&tss[k], tss_destructor) == thrd_success);
    CHECK_RC(pthread_key_create(&libc_keys[1], NULL), 0);
    CHECK(libc_keys[0] < 32 && libc_keys[1] >= 32);

    int ended_as_expected = 1, reused = 0;
    pthread_t previous = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t t;
        CHECK_RC(pthread_create(&t, NULL, worker, (void *)(intptr_t)round), 0);
        if (round % 4 == 0) { /* once it has left its mess (not at its first pthread_testcancel) */
            while (!__atomic_exchange_n(&waiting, 0, __ATOMIC_SEQ_CST)) sleep_ms(1);
            CHECK_RC(pthread_cancel(t), 0);
        }
        void *result = NULL;
        CHECK_RC(pthread_join(t, &result), 0);
        void *want = round % 4 == 0 || round % 4 == 3 ? PTHREAD_CANCELED : (void *)(intptr_t)round;
        if (result != want) ended_as_expected = 0;
        if (round > 0 && pthread_equal(t, previous)) reused++;
        previous = t;
    }
    CHECK(ended_as_expected);
    CHECK(tss_destroyed == ROUNDS * TSS_KEYS);
    /* Each thread got the one before's stack and descriptor (glibc's stack
     * cache, the library's stack pool): what this program is about. */
    CHECK(reused > ROUNDS / 2);
    printf("a thread made after another ended starts new: TLS, errno, locale, keys, tss, dynamic TLS, cancellation\n");

    /* Warm up, then count malloc's bytes in use across many more threads. */
    for (int i = 0; i < 100; i++) {
        pthread_t t;
        pthread_create(&t, NULL, touch, NULL);
        pthread_join(t, NULL);
    }
    size_t before = mallinfo2().uordblks;
    int fresh = 1;
    for (int i = 0; i < LEAK_THREADS; i++) {
        pthread_t t;
        void *result = NULL;
        CHECK_RC(pthread_create(&t, NULL, touch, NULL), 0);
        CHECK_RC(pthread_join(t, &result), 0);
        if (!result) fresh = 0;
    }
    size_t after = mallinfo2().uordblks;
    CHECK(fresh);
    /* A leaked dynamic TLS block per thread would be 20,000 chunks (over 600 KB). */
    if (after > before + 256 * 1024) printf("FAIL malloc bytes in use grew by %zu over %d threads\n", after - before, LEAK_THREADS);
    else printf("dynamic TLS of ended threads: given back\n");
    return check_failures ? 1 : 0;
}
