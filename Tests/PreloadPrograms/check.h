/* check.h — tiny helpers shared by the preload test programs.
 *
 * Every program in this directory is a plain POSIX program that knows nothing
 * of Green: it must pass natively and under LD_PRELOAD=libgreen-preload.so.
 * A failed check prints "FAIL file:line: what" and the program exits 1 at the
 * end (or at once with CHECK_FATAL). A watchdog alarm kills a program that
 * hangs (SIGALRM's default action), so a deadlock shows up as a signal
 * instead of a stuck test. */
#ifndef PRELOAD_CHECK_H
#define PRELOAD_CHECK_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int check_failures;

#define CHECK(cond) do { \
        if (!(cond)) { \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            fflush(stdout); \
            __atomic_add_fetch(&check_failures, 1, __ATOMIC_SEQ_CST); \
        } \
    } while (0)

/* A pthread-style call (returns 0 or an error number) that must return `want`. */
#define CHECK_RC(call, want) do { \
        int rc_ = (call); \
        if (rc_ != (want)) { \
            printf("FAIL %s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__, __LINE__, #call, \
                   rc_, strerror(rc_), (want), strerror(want)); \
            fflush(stdout); \
            __atomic_add_fetch(&check_failures, 1, __ATOMIC_SEQ_CST); \
        } \
    } while (0)

/* A libc-style call (returns -1 and sets errno) that must fail with `want`. */
#define CHECK_ERRNO(call, want) do { \
        errno = 0; \
        int rc_ = (call); \
        int e_ = errno; \
        if (rc_ != -1 || e_ != (want)) { \
            printf("FAIL %s:%d: %s returned %d errno %d (%s), expected -1 errno %d (%s)\n", __FILE__, __LINE__, \
                   #call, rc_, e_, strerror(e_), (want), strerror(want)); \
            fflush(stdout); \
            __atomic_add_fetch(&check_failures, 1, __ATOMIC_SEQ_CST); \
        } \
    } while (0)

/* One round on a table of 16 longs under an rwlock whose sum stays 0: a
 * writer (every fourth round) moves 2 from two cells to one, a reader checks
 * the sum, which a read torn by a writer would show. */
static inline void rw_table_round(pthread_rwlock_t *rw, long table[16], int round, long id) {
    if ((round + id) % 4 == 0) {
        pthread_rwlock_wrlock(rw);
        table[round % 16] += 2;
        table[(round + 1) % 16] -= 1;
        table[(round + 2) % 16] -= 1;
        pthread_rwlock_unlock(rw);
    } else {
        pthread_rwlock_rdlock(rw);
        long sum = 0;
        for (int k = 0; k < 16; k++) sum += table[k];
        CHECK(sum == 0);
        pthread_rwlock_unlock(rw);
    }
}

/* Read what comes (one read) and say whether it is exactly `want`. */
static inline int read_is(int fd, const char *want) {
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

/* Start of every program: unbuffered-enough stdout and a watchdog. */
static inline void program_start(unsigned watchdog_seconds) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(watchdog_seconds);
}

/* End of every program: the exit status says whether every check passed. */
static inline int program_end(const char *name) {
    if (check_failures) {
        printf("%s: %d check(s) FAILED\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

static inline struct timespec ts_now(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t;
}

/* `clock`'s now plus `ms` milliseconds: an absolute deadline. */
static inline struct timespec deadline_after(clockid_t clock, long ms) {
    struct timespec t = ts_now(clock);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) { t.tv_sec++; t.tv_nsec -= 1000000000L; }
    return t;
}

/* a >= b */
static inline int ts_reached(struct timespec a, struct timespec b) {
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec >= b.tv_nsec);
}

static inline double ms_since(struct timespec start) {
    struct timespec t = ts_now(CLOCK_MONOTONIC);
    return (t.tv_sec - start.tv_sec) * 1e3 + (t.tv_nsec - start.tv_nsec) / 1e6;
}

static inline void sleep_ms(long ms) { usleep((useconds_t)ms * 1000); }

/* A signal handler that records how often it ran and in which thread it
 * ran last (install it with sigaction where a program needs it). */
static volatile sig_atomic_t handler_runs __attribute__((unused));
static pthread_t handler_thread __attribute__((unused));
static inline void record_handler(int sig) {
    (void)sig;
    handler_runs++;
    handler_thread = pthread_self();
}

/* The "Threads:" line of /proc/self/status (-1 if unreadable). */
static inline int os_thread_count(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

/* Install `fn` for `sig` with sigaction `flags` (SA_RESTART or 0) and an empty mask. */
static inline int set_handler(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

#endif
