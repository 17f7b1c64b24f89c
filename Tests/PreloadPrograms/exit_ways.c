/* exit_ways.c MODE — the ways a threaded process ends:
 *   return3          main returns 3
 *   exit4            a non-main thread calls exit(4) while main waits in pthread_join
 *   pthread_exit     main calls pthread_exit while 3 workers still run; they
 *                    finish and print, then the process exits with 0
 *   exit_sleeping    main calls exit(5) while 10 threads sleep for 30 s: the
 *                    process ends at once with status 5
 *   return_blocked   main returns 6 while threads wait on a mutex and a
 *                    condvar that nobody will release */
#include "check.h"

static void *exit_from_thread(void *arg) {
    (void)arg;
    sleep_ms(20);
    printf("thread: calling exit(4)\n");
    exit(4);
}

static void *worker(void *arg) {
    long i = (long)(intptr_t)arg;
    sleep_ms(100 + 50 * i);
    printf("worker %ld done\n", i);
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    sleep(30);
    printf("sleeper woke up: the process should have exited already\n");
    return NULL;
}

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *block_on_mutex(void *arg) {
    (void)arg;
    pthread_mutex_lock(&held);
    printf("got a mutex nobody releases\n");
    return NULL;
}

static void *block_on_cond(void *arg) {
    (void)arg;
    pthread_mutex_lock(&cond_lock);
    pthread_cond_wait(&never, &cond_lock);
    printf("woke from a condvar nobody signals\n");
    return NULL;
}

int main(int argc, char **argv) {
    program_start(60);
    const char *mode = argc > 1 ? argv[1] : "";
    pthread_t t;
    if (strcmp(mode, "return3") == 0) {
        printf("main: returning 3\n");
        return 3;
    }
    if (strcmp(mode, "exit4") == 0) {
        pthread_create(&t, NULL, exit_from_thread, NULL);
        pthread_join(t, NULL);
        printf("main: join returned: exit(4) did not end the process\n");
        return 1;
    }
    if (strcmp(mode, "pthread_exit") == 0) {
        for (long i = 0; i < 3; i++) pthread_create(&t, NULL, worker, (void *)(intptr_t)i);
        printf("main: pthread_exit\n");
        pthread_exit(NULL);
    }
    if (strcmp(mode, "exit_sleeping") == 0) {
        for (int i = 0; i < 10; i++) pthread_create(&t, NULL, sleeper, NULL);
        sleep_ms(100);
        printf("main: exit(5) with 10 threads asleep\n");
        exit(5);
    }
    if (strcmp(mode, "return_blocked") == 0) {
        pthread_mutex_lock(&held);
        for (int i = 0; i < 5; i++) {
            pthread_create(&t, NULL, block_on_mutex, NULL);
            pthread_create(&t, NULL, block_on_cond, NULL);
        }
        sleep_ms(100);
        printf("main: returning 6 with 10 threads blocked\n");
        return 6;
    }
    printf("usage: exit_ways return3|exit4|pthread_exit|exit_sleeping|return_blocked\n");
    return 2;
}
