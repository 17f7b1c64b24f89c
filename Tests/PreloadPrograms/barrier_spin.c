/* barrier_spin.c — barriers, spin locks, and the clock-taking waits
 * (pthread_cond_clockwait, sem_clockwait, pthread_mutex_clocklock). */
#include "check.h"
#include <semaphore.h>

enum { THREADS = 8, ROUNDS = 200 };
static pthread_barrier_t barrier;
static pthread_spinlock_t spin;
static int counter, serial, out_of_step;

static void *worker(void *arg) {
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_spin_lock(&spin);
        counter++;
        pthread_spin_unlock(&spin);
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
            if (__atomic_load_n(&counter, __ATOMIC_SEQ_CST) != (r + 1) * THREADS) out_of_step++;
            serial++;
        }
        pthread_barrier_wait(&barrier); /* nobody starts round r+1 before the check */
    }
    return NULL;
}

int main(void) {
    program_start(30);
    CHECK_RC(pthread_barrier_init(&barrier, NULL, THREADS), 0);
    CHECK_RC(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE), 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK(counter == THREADS * ROUNDS && serial == ROUNDS && out_of_step == 0);
    CHECK_RC(pthread_barrier_destroy(&barrier), 0);
    printf("barrier: %d rounds of %d threads in step, one serial thread per round\n", ROUNDS, THREADS);

    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    sem_t s;
    sem_init(&s, 0, 0);
    struct timespec soon = deadline_after(CLOCK_MONOTONIC, 30);
    pthread_mutex_lock(&m);
    CHECK_RC(pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &soon), ETIMEDOUT);
    pthread_mutex_unlock(&m);
    soon = deadline_after(CLOCK_MONOTONIC, 30);
    CHECK_ERRNO(sem_clockwait(&s, CLOCK_MONOTONIC, &soon), ETIMEDOUT);
    CHECK_ERRNO(sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &soon), EINVAL);
    pthread_mutex_lock(&m);
    soon = deadline_after(CLOCK_MONOTONIC, 30);
    pthread_mutex_t other = PTHREAD_MUTEX_INITIALIZER;
    CHECK_RC(pthread_mutex_clocklock(&other, CLOCK_MONOTONIC, &soon), 0);
    pthread_mutex_unlock(&other);
    pthread_mutex_unlock(&m);
    printf("clock waits: cond and sem time out on CLOCK_MONOTONIC, bad clock EINVAL\n");
    return program_end("barrier_spin");
}
