/* switch_round_trip.c — what handing the CPU from one pthread to another and
 * back costs, in a plain C program (no Green API): run it natively, then with
 * LD_PRELOAD of libgreen-preload.so (where sched_yield is a fiber yield), and
 * compare.
 *
 *   cc -O2 -pthread -o switch_round_trip switch_round_trip.c
 *   ./switch_round_trip [N] [BATCHES]      (defaults: 200000 9)
 *   ./switch_round_trip tp [N]             (default: 5000000)
 *
 * Two threads take turns: a shared `turn` word says whose turn it is; a
 * thread whose turn it is hands it over (one store) and then calls
 * sched_yield until the turn is back. Nothing else happens between two
 * switches: no wait queue, no futex, no fd. Natively the process is first
 * pinned to the CPU it is on, so both threads share one CPU (as fibers share
 * their hub's) and each sched_yield is a context switch in the kernel, not a
 * cache line bouncing between two CPUs spinning side by side.
 *
 * The threads run BATCHES+1 batches of N round trips back to back; the first
 * is a warm-up and is dropped. One `key=value` line on stdout:
 *   ns_per_round_trip      the median batch's wall time per round trip
 *                          (CLOCK_MONOTONIC), and min_/max_ of the batches;
 *   cpu_ns_per_round_trip  the same from the process's CPU time
 *                          (CLOCK_PROCESS_CPUTIME_ID: time other processes
 *                          took the CPU away is not in it);
 *   yields_per_round_trip  sched_yield calls per round trip, both threads
 *                          together: 2.00 when every call switched to the
 *                          other thread;
 *   tls_distinct           1 if the two threads see different addresses for
 *                          a __thread variable (TLS of their own), 0 if the
 *                          same (shared TLS);
 *   pinned_cpu             the CPU the process was pinned to (-1: not pinned).
 *
 * `tp`: what the switch adds when two threads have TLS of their own, alone —
 * writing the thread pointer (x86_64: wrfsbase, when the kernel allows it;
 * each write stores the value it already has, so TLS stays valid throughout).
 * One line: `tp_write n=N ns_per_write=X`, or `tp_write unsupported`.
 * Exit status 0 on success, 1 if a call fails (with a message). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/auxv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BATCHES 1000

/* Exit with a message when a pthread call returned an error code. */
static void check(int rc, const char *what) {
    if (rc != 0) {
        fprintf(stderr, "switch_round_trip: %s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static double clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long n_per_batch, batches;
static int turn;                              /* 0 or 1: whose turn it is */
static __thread int tls_probe;                /* its address tells whether TLS is shared */
static int *tls_seen[2];
static long yields[2];
static double wall_mark[MAX_BATCHES + 2], cpu_mark[MAX_BATCHES + 2];

/* One of the two threads; `arg` is its number. Thread 0 also takes the
 * timestamps: one before the first batch and one after each batch. */
static void *player(void *arg) {
    int me = (int)(long)arg;
    long my_yields = 0;
    tls_seen[me] = &tls_probe;
    for (long b = 0; b <= batches; b++) {
        if (me == 0) {
            wall_mark[b] = clock_ns(CLOCK_MONOTONIC);
            cpu_mark[b] = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        }
        for (long i = 0; i < n_per_batch; i++) {
            while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != me) {
                sched_yield();
                my_yields++;
            }
            __atomic_store_n(&turn, !me, __ATOMIC_RELEASE);
        }
    }
    if (me == 0) {
        /* The other thread still owes its last pass: wait for it, so the
         * last mark covers whole round trips. */
        while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != 0) {
            sched_yield();
            my_yields++;
        }
        wall_mark[batches + 1] = clock_ns(CLOCK_MONOTONIC);
        cpu_mark[batches + 1] = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    }
    yields[me] = my_yields;
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Per round trip of batches 1...batches (batch 0 is the warm-up), sorted. */
static void per_batch(const double *mark, double *out) {
    for (long b = 1; b <= batches; b++) out[b - 1] = (mark[b + 1] - mark[b]) / (double)n_per_batch;
    qsort(out, (size_t)batches, sizeof *out, by_value);
}

/* Parse a positive count argument, or exit with the usage. */
static long count_arg(const char *text, long max) {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (!end || *end != '\0' || v <= 0 || v > max) {
        fprintf(stderr, "usage: switch_round_trip [N] [BATCHES]   (positive counts, BATCHES <= %d)\n", MAX_BATCHES);
        exit(2);
    }
    return v;
}

/* The `tp` mode: N thread pointer writes back to back; the median of 5 runs. */
static int thread_pointer_writes(long n) {
#if defined(__x86_64__)
    if (!(getauxval(AT_HWCAP2) & 2)) { /* HWCAP2_FSGSBASE: user code may run wrfsbase */
        printf("tp_write unsupported\n");
        return 0;
    }
    void *tp = __builtin_thread_pointer();
    double ns[5];
    for (int run = 0; run < 5; run++) {
        double start = clock_ns(CLOCK_MONOTONIC);
        for (long i = 0; i < n; i++) __asm__ volatile("wrfsbase %0" : : "r"(tp) : "memory");
        ns[run] = (clock_ns(CLOCK_MONOTONIC) - start) / (double)n;
    }
    qsort(ns, 5, sizeof *ns, by_value);
    printf("tp_write n=%ld ns_per_write=%.2f\n", n, ns[2]);
#else
    (void)n;
    printf("tp_write unsupported\n");
#endif
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "tp") == 0)
        return thread_pointer_writes(argc > 2 ? count_arg(argv[2], 1L << 40) : 5000000);
    n_per_batch = argc > 1 ? count_arg(argv[1], 1L << 40) : 200000;
    batches = argc > 2 ? count_arg(argv[2], MAX_BATCHES) : 9;

    int cpu = sched_getcpu();
    if (cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) cpu = -1;
    }

    pthread_t threads[2];
    for (long i = 0; i < 2; i++) check(pthread_create(&threads[i], NULL, player, (void *)i), "pthread_create");
    for (int i = 0; i < 2; i++) check(pthread_join(threads[i], NULL), "pthread_join");

    /* Warm-up's yields included: a round trip that did not switch would show. */
    double wall[MAX_BATCHES], cpu_time[MAX_BATCHES];
    per_batch(wall_mark, wall);
    per_batch(cpu_mark, cpu_time);
    long total_round_trips = n_per_batch * (batches + 1);
    printf("switch_round_trip n=%ld batches=%ld ns_per_round_trip=%.2f min_ns=%.2f max_ns=%.2f "
           "cpu_ns_per_round_trip=%.2f yields_per_round_trip=%.3f tls_distinct=%d pinned_cpu=%d\n",
           n_per_batch, batches, wall[batches / 2], wall[0], wall[batches - 1], cpu_time[batches / 2],
           (double)(yields[0] + yields[1]) / (double)total_round_trips, tls_seen[0] != tls_seen[1], cpu);
    return 0;
}
