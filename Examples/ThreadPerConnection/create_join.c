/* create_join.c — what creating and joining a pthread costs, in a plain C
 * program (no Green API): run it natively, then with LD_PRELOAD of
 * libgreen-preload.so, and compare.
 *
 *   cc -O2 -pthread -o create_join create_join.c
 *   ./create_join [N] [ALIVE] [ROUNDS]     (defaults: 20000 1000 10)
 *
 * Two figures, each printed as one `key=value` line on stdout:
 *   one_at_a_time: N threads, each created and joined before the next one
 *                  is created (the thread does nothing);
 *   alive_at_once: ALIVE threads created, all blocked on a condition
 *                  variable until the last one exists, then released and
 *                  joined; repeated ROUNDS times. The line also tells how
 *                  many OS threads /proc/self/status showed while they were
 *                  all alive.
 * Exit status 0 on success, 1 if a pthread call fails (with a message). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Exit with a message when a pthread call returned an error code. */
static void check(int rc, const char *what) {
    if (rc != 0) {
        fprintf(stderr, "create_join: %s: %s\n", what, strerror(rc));
        exit(1);
    }
}

/* CLOCK_MONOTONIC now, in nanoseconds. */
static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The "Threads:" line of /proc/self/status: OS threads of this process
 * (-1 if it cannot be read). */
static int os_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int threads = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &threads) == 1) break;
    fclose(f);
    return threads;
}

/* The body of a one-at-a-time thread: nothing, its argument back. */
static void *return_arg(void *arg) { return arg; }

/* Create and join `n` threads one after another; returns ns per pair. */
static double one_at_a_time(long n) {
    double start = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t t;
        void *result = NULL;
        check(pthread_create(&t, NULL, return_arg, (void *)i), "pthread_create");
        check(pthread_join(t, &result), "pthread_join");
        if ((long)result != i) {
            fprintf(stderr, "create_join: thread %ld returned %ld\n", i, (long)result);
            exit(1);
        }
    }
    return (now_ns() - start) / (double)n;
}

/* A gate the alive-at-once threads wait at until main opens it. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t opened;
    int open;
    long waiting;          /* threads that reached the gate */
    pthread_cond_t arrived;
};

static struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0,
                           PTHREAD_COND_INITIALIZER};

/* The body of an alive-at-once thread: report at the gate, wait until it opens. */
static void *wait_at_gate(void *arg) {
    pthread_mutex_lock(&gate.lock);
    gate.waiting++;
    pthread_cond_signal(&gate.arrived);
    while (!gate.open) pthread_cond_wait(&gate.opened, &gate.lock);
    pthread_mutex_unlock(&gate.lock);
    return arg;
}

/* One round: create `alive` threads that all wait at the gate, wait until
 * every one arrived (recording the OS thread count then), open the gate,
 * join them all. Returns the round's wall time in ns. */
static double alive_round(pthread_t *threads, long alive, int *threads_seen) {
    pthread_mutex_lock(&gate.lock);
    gate.open = 0;
    gate.waiting = 0;
    pthread_mutex_unlock(&gate.lock);

    double start = now_ns();
    for (long i = 0; i < alive; i++)
        check(pthread_create(&threads[i], NULL, wait_at_gate, NULL), "pthread_create (alive)");
    pthread_mutex_lock(&gate.lock);
    while (gate.waiting < alive) pthread_cond_wait(&gate.arrived, &gate.lock);
    pthread_mutex_unlock(&gate.lock);
    double paused = now_ns();
    *threads_seen = os_threads();   /* not timed: /proc reads are slow */
    double resumed = now_ns();

    pthread_mutex_lock(&gate.lock);
    gate.open = 1;
    pthread_cond_broadcast(&gate.opened);
    pthread_mutex_unlock(&gate.lock);
    for (long i = 0; i < alive; i++) check(pthread_join(threads[i], NULL), "pthread_join (alive)");
    return now_ns() - start - (resumed - paused);
}

/* Parse a positive count argument, or exit with the usage. */
static long count_arg(const char *text) {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (!end || *end != '\0' || v <= 0) {
        fprintf(stderr, "usage: create_join [N] [ALIVE] [ROUNDS]   (positive counts)\n");
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? count_arg(argv[1]) : 20000;
    long alive = argc > 2 ? count_arg(argv[2]) : 1000;
    long rounds = argc > 3 ? count_arg(argv[3]) : 10;

    /* Warm up: the first thread pays for glibc's one-time set-up. */
    one_at_a_time(100);
    double per_pair = one_at_a_time(n);
    printf("one_at_a_time n=%ld ns_per_create_join=%.1f\n", n, per_pair);
    fflush(stdout);

    pthread_t *threads = calloc((size_t)alive, sizeof *threads);
    if (!threads) {
        fprintf(stderr, "create_join: out of memory\n");
        return 1;
    }
    double total = 0;
    int threads_seen = -1;
    for (long r = 0; r < rounds; r++) total += alive_round(threads, alive, &threads_seen);
    free(threads);
    printf("alive_at_once n=%ld rounds=%ld ns_per_create_join=%.1f os_threads_while_alive=%d\n", alive, rounds,
           total / (double)(alive * rounds), threads_seen);
    return 0;
}
