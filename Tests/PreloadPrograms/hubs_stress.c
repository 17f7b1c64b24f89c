/* hubs_stress.c — thousands of threads share one mutex, one condition
 * variable, one rwlock and one semaphore, and hand turns to each other in
 * pairs through condition variables of their own. Natively the kernel runs
 * them on every CPU; under `green run --hubs=N` fiber threads on N hubs do,
 * moving between hubs as they wait and wake. Every count comes out exact;
 * a lost wake hangs, and the watchdog says so.
 *
 *   hubs_stress [THREADS]      (default 2000, even) */
#include "check.h"
#include <semaphore.h>

#define MUTEX_ROUNDS 50
#define RW_ROUNDS 20
#define SEM_ROUNDS 10
#define PAIR_ROUNDS 20

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_here = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static sem_t tokens;
static long counter, arrived, table[16], sem_passes, pair_turns;
static int threads;

/* Two threads take turns through a mutex and a condition variable of their own. */
typedef struct pair {
    pthread_mutex_t lock;
    pthread_cond_t turn_changed;
    int turn; /* 0 or 1: whose turn */
} pair;
static pair *pairs;

static void take_turns(pair *p, int side) {
    for (int i = 0; i < PAIR_ROUNDS; i++) {
        pthread_mutex_lock(&p->lock);
        while (p->turn != side) pthread_cond_wait(&p->turn_changed, &p->lock);
        p->turn = 1 - side;
        __atomic_add_fetch(&pair_turns, 1, __ATOMIC_RELAXED);
        pthread_cond_signal(&p->turn_changed);
        pthread_mutex_unlock(&p->lock);
    }
}

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < MUTEX_ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    /* A barrier made of the mutex and a condition: everyone waits for everyone. */
    pthread_mutex_lock(&lock);
    if (++arrived == threads) pthread_cond_broadcast(&all_here);
    while (arrived < threads) pthread_cond_wait(&all_here, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < RW_ROUNDS; i++) rw_table_round(&rw, table, i, id);
    for (int i = 0; i < SEM_ROUNDS; i++) {
        while (sem_wait(&tokens) != 0) CHECK(errno == EINTR);
        __atomic_add_fetch(&sem_passes, 1, __ATOMIC_RELAXED);
        sem_post(&tokens);
    }
    take_turns(&pairs[id / 2], (int)(id % 2));
    return NULL;
}

int main(int argc, char **argv) {
    program_start(120);
    threads = argc > 1 ? atoi(argv[1]) : 2000;
    if (threads < 2 || threads % 2) threads = 2000;
    pairs = calloc((size_t)threads / 2, sizeof *pairs);
    if (!pairs) return 1;
    for (int i = 0; i < threads / 2; i++) {
        pthread_mutex_init(&pairs[i].lock, NULL);
        pthread_cond_init(&pairs[i].turn_changed, NULL);
    }
    CHECK(sem_init(&tokens, 0, 8) == 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (!t) return 1;
    for (long i = 0; i < threads; i++) CHECK_RC(pthread_create(&t[i], &attr, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < threads; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    printf("threads: %d\n", threads);
    printf("mutex: %s\n", counter == (long)threads * MUTEX_ROUNDS ? "every increment" : "increments lost");
    long sum = 0;
    for (int k = 0; k < 16; k++) sum += table[k];
    printf("rwlock: %s\n", sum == 0 ? "table whole" : "torn");
    printf("semaphore: %s\n", sem_passes == (long)threads * SEM_ROUNDS ? "every pass" : "passes lost");
    printf("pairs: %s\n", pair_turns == (long)threads * PAIR_ROUNDS ? "every turn" : "turns lost");
    CHECK(counter == (long)threads * MUTEX_ROUNDS);
    CHECK(sem_passes == (long)threads * SEM_ROUNDS);
    CHECK(pair_turns == (long)threads * PAIR_ROUNDS);
    return program_end("hubs_stress");
}
