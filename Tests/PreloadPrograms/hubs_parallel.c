/* hubs_parallel.c — threads that only make progress when they run at the
 * same time, and threads that share locks, conditions, rwlocks and
 * semaphores in large numbers. Natively the kernel runs them in parallel;
 * under `green run --hubs=2` (with preemption off, so that only a second
 * hub can let them finish) fiber threads on two hubs do.
 *
 * - Ping-pong: two threads hand a turn back and forth by spinning on an
 *   atomic word, with no call at all, 20,000 times. On one OS thread without
 *   preemption this never ends.
 * - Stress: 64 threads increment a counter under a mutex, wait for each
 *   other on a condition variable, read and write under an rwlock and
 *   pass a semaphore around; every count comes out exact (a lost wake
 *   hangs, and the watchdog says so). */
#include "check.h"
#include <semaphore.h>
#include <sys/wait.h>

#define ROUNDS 20000
static int turn;

static void *pong(void *arg) {
    for (int i = 0; i < ROUNDS; i++) {
        while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != 1) { /* spin: no call */ }
        __atomic_store_n(&turn, 0, __ATOMIC_RELEASE);
    }
    return arg;
}

#define THREADS 64
#define PER_THREAD 2000
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long counter, arrived, table[16];
static sem_t tokens;
static long sem_passes;

static void *worker(void *arg) {
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    /* Everyone waits for everyone (a barrier made of a mutex and a condition). */
    pthread_mutex_lock(&lock);
    arrived++;
    if (arrived == THREADS) pthread_cond_broadcast(&changed);
    while (arrived < THREADS) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    /* Writers add to the table; readers check that the sum is whole. */
    for (int i = 0; i < 200; i++) rw_table_round(&rw, table, i, id);
    /* Four tokens for 64 threads. */
    for (int i = 0; i < 100; i++) {
        while (sem_wait(&tokens) != 0) CHECK(errno == EINTR);
        __atomic_add_fetch(&sem_passes, 1, __ATOMIC_RELAXED);
        sem_post(&tokens);
    }
    return NULL;
}

static long child_counter;
static void *child_worker(void *arg) {
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&lock);
        child_counter++;
        pthread_mutex_unlock(&lock);
        if (i % 100 == 0) sched_yield();
    }
    return arg;
}

/* In a child: 8 threads that take turns, then a ping-pong by spinning (which
 * needs a second hub in the child: it starts its own, as the parent did);
 * exit status 0 when all counted, 3 if the ping-pong did not end. */
static int fork_and_count(void) {
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        pthread_t c[8];
        for (int i = 0; i < 8; i++)
            if (pthread_create(&c[i], NULL, child_worker, NULL) != 0) _exit(2);
        for (int i = 0; i < 8; i++) pthread_join(c[i], NULL);
        if (child_counter != 8000) _exit(1);
        __atomic_store_n(&turn, 0, __ATOMIC_RELEASE);
        pthread_t t;
        if (pthread_create(&t, NULL, pong, NULL) != 0) _exit(2);
        for (int i = 0; i < ROUNDS; i++) {
            __atomic_store_n(&turn, 1, __ATOMIC_RELEASE);
            while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != 0) { /* spin: no call */ }
        }
        pthread_join(t, NULL);
        _exit(0);
    }
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static __thread int handled_here;
static void on_signal(int sig) { (void)sig; handled_here++; }

static void *raiser(void *arg) {
    int fds[2];
    if (pipe(fds) != 0) return (void *)1;
    close(fds[0]);
    raise(SIGUSR1);
    int raised = handled_here;
    ssize_t w = write(fds[1], "x", 1); /* the reader is gone: SIGPIPE, then EPIPE */
    int piped = handled_here - raised;
    close(fds[1]);
    return (void *)(intptr_t)(raised == 1 && piped == 1 && w == -1 && errno == EPIPE ? 0 : 1);
}

int main(void) {
    program_start(120);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, pong, NULL), 0);
    for (int i = 0; i < ROUNDS; i++) {
        __atomic_store_n(&turn, 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != 0) { /* spin: no call */ }
    }
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("ping-pong by spinning: %d rounds\n", ROUNDS);

    CHECK(sem_init(&tokens, 0, 4) == 0);
    pthread_t w[THREADS];
    for (long i = 0; i < THREADS; i++) CHECK_RC(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_join(w[i], NULL), 0);
    printf("mutex: %ld increments\n", counter);
    CHECK(counter == (long)THREADS * PER_THREAD);
    printf("semaphore: %ld passes\n", sem_passes);
    CHECK(sem_passes == (long)THREADS * 100);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    int bad = 0;
    for (int i = 0; i < 4; i++) { /* 4 threads: under --hubs=2 some land on hub 1 */
        void *r = NULL;
        CHECK_RC(pthread_create(&t, NULL, raiser, NULL), 0);
        CHECK_RC(pthread_join(t, &r), 0);
        bad += r != NULL;
    }
    printf("raise and SIGPIPE handled on the thread itself: %s\n", bad ? "no" : "yes");
    CHECK(bad == 0);

    int child = fork_and_count();
    printf("forked child with 8 threads, then a ping-pong by spinning: exit %d\n", child);
    CHECK(child == 0);
    return program_end("hubs_parallel");
}
