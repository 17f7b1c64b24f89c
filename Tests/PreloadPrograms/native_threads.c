/* native_threads.c — a thread the program did not create with pthread_create
 * (glibc's SIGEV_THREAD timer thread, a native OS thread even under the
 * preload) shares a mutex, a condition variable and a semaphore with main
 * and with a pthread: its signals and posts must wake them. */
#include "check.h"
#include <semaphore.h>
#include <signal.h>
#include <sys/syscall.h>

enum { TICKS = 5 };
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ticked = PTHREAD_COND_INITIALIZER;
static sem_t posts;
static int ticks;
static pid_t main_tid, timer_tid;

static void on_timer(union sigval v) {
    (void)v;
    __atomic_store_n(&timer_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&lock);
    ticks++;
    pthread_cond_broadcast(&ticked);
    pthread_mutex_unlock(&lock);
    sem_post(&posts);
}

static void *waiter(void *arg) {
    for (int i = 0; i < TICKS; i++) CHECK(sem_wait(&posts) == 0);
    return arg;
}

int main(void) {
    program_start(30);
    main_tid = (pid_t)syscall(SYS_gettid);
    CHECK(sem_init(&posts, 0, 0) == 0);
    pthread_t w;
    CHECK_RC(pthread_create(&w, NULL, waiter, NULL), 0);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = on_timer;
    timer_t timer;
    CHECK(timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0);
    struct itimerspec every_20ms = {{0, 20000000}, {0, 20000000}};
    CHECK(timer_settime(timer, 0, &every_20ms, NULL) == 0);

    pthread_mutex_lock(&lock);
    while (ticks < TICKS) CHECK_RC(pthread_cond_wait(&ticked, &lock), 0);
    pthread_mutex_unlock(&lock);
    CHECK_RC(pthread_join(w, NULL), 0);
    timer_delete(timer);
    pid_t from = __atomic_load_n(&timer_tid, __ATOMIC_SEQ_CST);
    CHECK(from != 0 && from != main_tid);
    printf("timer thread woke main (condvar) and a pthread (semaphore) %d times: %s\n", TICKS,
           from != main_tid ? "from another OS thread" : "FAIL same thread");
    return program_end("native_threads");
}
