/* thread_locals.c — each thread has TLS of its own: `__thread` variables
 * (initialised ones start from their initial value, others from zero),
 * errno, the locale set by uselocale, the ctype tables, and glibc's
 * descriptor (pthread_self is the value pthread_create gave, and the stack
 * protector and rseq fields work). Each thread writes its own values, lets
 * the others run (sleeps, yields), and checks they are still its own.
 * A thread's exit gives back what it took: 20,000 threads that malloc and
 * free leave the process' memory about where it was (glibc's malloc keeps a
 * per-thread cache that only its own thread exit returns). */
#include "check.h"
#include <ctype.h>
#include <langinfo.h>
#include <locale.h>
#include <sched.h>

#define THREADS 8
#define ROUNDS 50

static __thread int counter;          /* .tbss: zero in every thread */
static __thread int initialised = 42; /* .tdata: 42 in every thread */
static __thread char name[32];
static pthread_t handles[THREADS];
static int *errno_addresses[THREADS];
static int *counter_addresses[THREADS];
static pthread_barrier_t all_started;

static void *worker(void *arg) {
    int i = (int)(intptr_t)arg;
    CHECK(counter == 0);
    CHECK(initialised == 42);
    CHECK(name[0] == 0);
    snprintf(name, sizeof name, "worker %d", i);
    errno_addresses[i] = &errno;
    counter_addresses[i] = &counter;
    pthread_barrier_wait(&all_started); /* every thread exists at once */
    CHECK(pthread_equal(pthread_self(), handles[i]));
    for (int r = 0; r < ROUNDS; r++) {
        counter++;
        initialised++;
        errno = 1000 + i;
        if (r % 3 == 0) sched_yield();
        else if (r % 3 == 1) usleep(100);
        else {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
        CHECK(errno == 1000 + i);
    }
    CHECK(counter == ROUNDS);
    CHECK(initialised == 42 + ROUNDS);
    char want[32];
    snprintf(want, sizeof want, "worker %d", i);
    CHECK(strcmp(name, want) == 0);
    /* glibc's per-thread state: ctype tables, the CPU number (rseq or vDSO). */
    CHECK(isalpha('a') && !isalpha('1') && toupper('q') == 'Q');
    CHECK(sched_getcpu() >= 0);
    return (void *)(intptr_t)(counter + i);
}

/* uselocale is per thread: one thread's locale is not another's. */
static locale_t utf8;
static int locale_step;

static void *utf8_thread(void *unused) {
    (void)unused;
    uselocale(utf8);
    CHECK(strcmp(nl_langinfo(CODESET), "UTF-8") == 0);
    __atomic_store_n(&locale_step, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&locale_step, __ATOMIC_SEQ_CST) != 2) usleep(100);
    CHECK(strcmp(nl_langinfo(CODESET), "UTF-8") == 0); /* the other thread did not change it */
    return NULL;
}

static void *c_thread(void *unused) {
    (void)unused;
    while (__atomic_load_n(&locale_step, __ATOMIC_SEQ_CST) != 1) usleep(100);
    CHECK(strcmp(nl_langinfo(CODESET), "ANSI_X3.4-1968") == 0); /* the global "C" locale */
    __atomic_store_n(&locale_step, 2, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *churn(void *unused) {
    void *blocks[20];
    for (int i = 0; i < 20; i++) blocks[i] = malloc(16 + (size_t)i * 24);
    for (int i = 0; i < 20; i++) free(blocks[i]);
    return unused;
}

static long resident_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void) {
    program_start(30);
    pthread_barrier_init(&all_started, NULL, THREADS);
    counter = 7;
    strcpy(name, "main");
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_create(&handles[i], NULL, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        CHECK_RC(pthread_join(handles[i], &ret), 0);
        CHECK((intptr_t)ret == ROUNDS + i);
    }
    int distinct = 1;
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < i; j++)
            if (errno_addresses[i] == errno_addresses[j] || counter_addresses[i] == counter_addresses[j]) distinct = 0;
    CHECK(distinct);
    CHECK(counter == 7 && initialised == 42 && strcmp(name, "main") == 0);
    printf("thread-local variables: own per thread\n");

    utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    CHECK(utf8 != (locale_t)0);
    pthread_t a, b;
    CHECK_RC(pthread_create(&a, NULL, utf8_thread, NULL), 0);
    CHECK_RC(pthread_create(&b, NULL, c_thread, NULL), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    freelocale(utf8);
    printf("uselocale: per thread\n");

    long before = resident_kib();
    for (int i = 0; i < 20000; i++) {
        pthread_t t;
        CHECK_RC(pthread_create(&t, NULL, churn, NULL), 0);
        CHECK_RC(pthread_join(t, NULL), 0);
    }
    long grown = resident_kib() - before;
    if (grown > 16384) printf("FAIL: 20000 threads grew the process by %ld KiB\n", grown);
    printf("thread exits: memory given back\n");
    return check_failures ? 1 : 0;
}
