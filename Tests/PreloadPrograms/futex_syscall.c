/* futex_syscall.c — futexes called through syscall(), as Rust's std::sync,
 * libstdc++'s atomic waits and many C libraries do: waits on a word wake up
 * when another thread changes it and wakes the address, whoever waits and
 * whoever wakes (threads, a native thread of glibc's timer, main); waits
 * with FUTEX_WAIT's relative and FUTEX_WAIT_BITSET's absolute timeouts on
 * both clocks time out; bitsets select whom a wake reaches; and bad input
 * fails as the kernel says. Other syscall numbers reach the same calls as
 * by name. */
#include "check.h"
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts, uint32_t *word2, uint32_t val3) {
    return syscall(SYS_futex, word, op, val, ts, word2, val3);
}

/* A lock and a condition made of futexes, as Rust's std::sync does them. */
static uint32_t lock_word, turn_word;
static long shared_counter;

static void lock(void) {
    uint32_t zero = 0;
    if (__atomic_compare_exchange_n(&lock_word, &zero, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    while (__atomic_exchange_n(&lock_word, 2, __ATOMIC_ACQUIRE) != 0)
        futex(&lock_word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

static void unlock(void) {
    if (__atomic_exchange_n(&lock_word, 0, __ATOMIC_RELEASE) == 2) futex(&lock_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#define WORKERS 8
#define ROUNDS 2000

static void *contender(void *arg) {
    for (int i = 0; i < ROUNDS; i++) {
        lock();
        long v = shared_counter;
        if (i % 50 == 0) usleep(10); /* hold the lock across a sleep: the others must wait */
        shared_counter = v + 1;
        unlock();
    }
    return arg;
}

/* Turn-taking: each thread waits for its number, then passes the turn. */
static void *taker(void *arg) {
    uint32_t me = (uint32_t)(intptr_t)arg;
    for (int round = 0; round < 20; round++) {
        uint32_t want = me + (uint32_t)round * WORKERS;
        uint32_t t;
        while ((t = __atomic_load_n(&turn_word, __ATOMIC_ACQUIRE)) != want)
            futex(&turn_word, FUTEX_WAIT_PRIVATE, t, NULL, NULL, 0);
        __atomic_store_n(&turn_word, want + 1, __ATOMIC_RELEASE);
        futex(&turn_word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
    }
    return NULL;
}

/* Bitsets: a wake with bit 1 reaches the waiter on bit 1 only. */
static uint32_t bits_word;
static int woke_bit[2];

static void *bit_waiter(void *arg) {
    int bit = (int)(intptr_t)arg;
    while (__atomic_load_n(&bits_word, __ATOMIC_ACQUIRE) == 0)
        futex(&bits_word, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 1u << bit);
    __atomic_store_n(&woke_bit[bit], 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* A native thread (glibc's SIGEV_THREAD timer thread) wakes a thread's wait,
 * then waits itself until a thread wakes it. */
static uint32_t to_thread, to_native, native_done;

static void on_timer(union sigval v) {
    (void)v;
    __atomic_store_n(&to_thread, 1, __ATOMIC_RELEASE);
    futex(&to_thread, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    while (__atomic_load_n(&to_native, __ATOMIC_ACQUIRE) == 0) futex(&to_native, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    __atomic_store_n(&native_done, 1, __ATOMIC_RELEASE);
    futex(&native_done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static int64_t now_ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static struct timespec in_ms(clockid_t clock, int ms) {
    int64_t at = now_ns(clock) + (int64_t)ms * 1000000;
    struct timespec t = {(time_t)(at / 1000000000), (long)(at % 1000000000)};
    return t;
}

static int ticker_ticks;
static void *ticker(void *arg) {
    for (int i = 0; i < 5; i++) {
        usleep(5000);
        __atomic_add_fetch(&ticker_ticks, 1, __ATOMIC_SEQ_CST);
    }
    return arg;
}

/* A private and a shared futex on one address are two futexes: a
 * FUTEX_WAKE_PRIVATE ends only private waits, a FUTEX_WAKE only shared ones.
 * Each waiter waits until its own go flag is set; each wake of one kind is
 * tried until its waiter ended. (The library's shared waiters took private
 * wakes, which then never reached the private waiter: it waited for ever.) */
static uint32_t kinds_word; /* stays 0 */
static int kind_go[2], kind_done[2]; /* [0] the shared waiter, [1] the private one */
static int shared_woken_early; /* wakes the shared waiter took before its go: private ones */
static void *kind_waiter(void *private_) {
    int priv = private_ != NULL;
    while (!__atomic_load_n(&kind_go[priv], __ATOMIC_SEQ_CST)) {
        long r = futex(&kinds_word, priv ? FUTEX_WAIT_PRIVATE : FUTEX_WAIT, 0, NULL, NULL, 0);
        if (r == 0 && !priv && !__atomic_load_n(&kind_go[0], __ATOMIC_SEQ_CST))
            __atomic_add_fetch(&shared_woken_early, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&kind_done[priv], 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int wake_until_done(int priv) {
    __atomic_store_n(&kind_go[priv], 1, __ATOMIC_SEQ_CST);
    for (int tries = 0; tries < 2000; tries++) {
        if (__atomic_load_n(&kind_done[priv], __ATOMIC_SEQ_CST)) return 1;
        futex(&kinds_word, priv ? FUTEX_WAKE_PRIVATE : FUTEX_WAKE, 1, NULL, NULL, 0);
        usleep(1000);
    }
    return __atomic_load_n(&kind_done[priv], __ATOMIC_SEQ_CST);
}

static void private_and_shared(void) {
    pthread_t waiters[2];
    CHECK_RC(pthread_create(&waiters[0], NULL, kind_waiter, NULL), 0);
    usleep(10000); /* (the shared one first, if it gets there: a wrong-kind wake would take it) */
    CHECK_RC(pthread_create(&waiters[1], NULL, kind_waiter, (void *)1), 0);
    usleep(10000);
    int priv = wake_until_done(1), shared = wake_until_done(0);
    CHECK(priv && shared && shared_woken_early == 0);
    for (int i = 0; i < 2; i++) CHECK_RC(pthread_join(waiters[i], NULL), 0);
    printf("futex: a private wake ends a private wait: %s, a shared one: %s; a shared wake a shared wait: %s\n",
           priv ? "yes" : "no", shared_woken_early ? "yes" : "no", shared ? "yes" : "no");
}

int main(void) {
    program_start(30);
    pthread_t t[WORKERS];

    for (int i = 0; i < WORKERS; i++) CHECK_RC(pthread_create(&t[i], NULL, contender, NULL), 0);
    for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
    CHECK(shared_counter == WORKERS * ROUNDS);
    printf("futex lock: %d increments\n", WORKERS * ROUNDS);

    for (int i = 0; i < WORKERS; i++) CHECK_RC(pthread_create(&t[i], NULL, taker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
    CHECK(turn_word == 20 * WORKERS);
    printf("futex turns: %u\n", turn_word);

    /* Timeouts, while another thread keeps running (the wait parks only its thread). */
    pthread_t tick;
    CHECK_RC(pthread_create(&tick, NULL, ticker, NULL), 0);
    uint32_t never = 0;
    struct timespec rel = {0, 30 * 1000000};
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_ERRNO((int)futex(&never, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0), ETIMEDOUT);
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 29 * 1000000);
    struct timespec abs_mono = in_ms(CLOCK_MONOTONIC, 20);
    CHECK_ERRNO((int)futex(&never, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs_mono, NULL, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    CHECK(now_ns(CLOCK_MONOTONIC) >= (int64_t)abs_mono.tv_sec * 1000000000 + abs_mono.tv_nsec);
    struct timespec abs_real = in_ms(CLOCK_REALTIME, 20);
    CHECK_ERRNO((int)futex(&never, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &abs_real, NULL,
                           FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    CHECK(now_ns(CLOCK_REALTIME) >= (int64_t)abs_real.tv_sec * 1000000000 + abs_real.tv_nsec);
    pthread_join(tick, NULL);
    CHECK(ticker_ticks == 5);
    printf("futex timeouts: relative, absolute monotonic, absolute realtime\n");

    /* Bitsets. */
    pthread_t b0, b1;
    CHECK_RC(pthread_create(&b0, NULL, bit_waiter, (void *)0), 0);
    CHECK_RC(pthread_create(&b1, NULL, bit_waiter, (void *)1), 0);
    usleep(20000); /* both waiting */
    __atomic_store_n(&bits_word, 1, __ATOMIC_RELEASE);
    CHECK(futex(&bits_word, FUTEX_WAKE_BITSET_PRIVATE, INT32_MAX, NULL, NULL, 1u << 1) == 1);
    pthread_join(b1, NULL);
    usleep(20000);
    CHECK(__atomic_load_n(&woke_bit[1], __ATOMIC_SEQ_CST) == 1 && __atomic_load_n(&woke_bit[0], __ATOMIC_SEQ_CST) == 0);
    CHECK(futex(&bits_word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0) == 1);
    pthread_join(b0, NULL);
    printf("futex bitsets: a wake reaches only its bits\n");

    /* Native thread <-> thread. */
    timer_t timer;
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_timer};
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0);
    struct itimerspec once = {.it_value = {0, 10 * 1000000}};
    CHECK(timer_settime(timer, 0, &once, NULL) == 0);
    while (__atomic_load_n(&to_thread, __ATOMIC_ACQUIRE) == 0) futex(&to_thread, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    usleep(20000); /* the native thread is (most likely) waiting in the kernel now */
    __atomic_store_n(&to_native, 1, __ATOMIC_RELEASE);
    futex(&to_native, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    while (__atomic_load_n(&native_done, __ATOMIC_ACQUIRE) == 0)
        futex(&native_done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    timer_delete(timer);
    printf("futex: a native thread wakes a thread and the reverse\n");

    /* Bad input: as the kernel. */
    uint32_t word = 5;
    CHECK_ERRNO((int)futex(&word, FUTEX_WAIT_PRIVATE, 4, NULL, NULL, 0), EAGAIN);
    void *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);
    CHECK_ERRNO((int)futex((uint32_t *)gone, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EFAULT);
    CHECK_ERRNO((int)futex((uint32_t *)((char *)&word + 1), FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    CHECK_ERRNO((int)futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 5, NULL, NULL, 0), EINVAL);
    struct timespec bad = {0, 2000000000};
    CHECK_ERRNO((int)futex(&word, FUTEX_WAIT_PRIVATE, 5, &bad, NULL, 0), EINVAL);
    CHECK_ERRNO((int)futex(&word, 99, 0, NULL, NULL, 0), ENOSYS);
    CHECK(futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0); /* nobody waits */
    printf("futex errors: EAGAIN EFAULT EINVAL ENOSYS\n");

    /* Other numbers reach the calls by name. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(syscall(SYS_write, fds[1], "hey", 3) == 3);
    char buf[4] = {0};
    CHECK(syscall(SYS_read, fds[0], buf, 3) == 3 && strcmp(buf, "hey") == 0);
    struct timespec nap = {0, 1000000};
    CHECK(syscall(SYS_nanosleep, &nap, NULL) == 0);
    CHECK(syscall(SYS_gettid) == gettid());
    CHECK(syscall(SYS_close, fds[0]) == 0 && syscall(SYS_close, fds[1]) == 0);
    CHECK_ERRNO((int)syscall(SYS_close, fds[0]), EBADF);
    printf("syscall: read write nanosleep gettid close\n");
    private_and_shared();
    return check_failures ? 1 : 0;
}
