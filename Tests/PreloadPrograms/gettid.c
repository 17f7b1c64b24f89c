/* gettid.c — every thread has a thread id of its own, as the kernel gives it:
 *  - gettid() and syscall(SYS_gettid) agree in every thread;
 *  - the ids of threads alive at once are distinct, and none is the pid
 *    except main's (main's id is getpid());
 *  - a thread's id is the same after sleeps, yields and parked waits;
 *  - tgkill(pid, tid, 0) finds a live thread (0) and, once the thread has
 *    been joined, no longer does (ESRCH) (a signal sent by tgkill runs in
 *    its target thread: thread_sigmask.c);
 *  - the child of a fork made by a thread has a single thread whose id is
 *    the child's pid. */
#include "check.h"
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define THREADS 8
#define ROUNDS 20

static pthread_barrier_t all_started, ids_compared;
static pid_t ids[THREADS];
static pthread_t handles[THREADS];

static pid_t sys_gettid(void) { return (pid_t)syscall(SYS_gettid); }
static int sys_tgkill(pid_t pid, pid_t tid, int sig) { return (int)syscall(SYS_tgkill, pid, tid, sig); }

static void *worker(void *arg) {
    int i = (int)(intptr_t)arg;
    pid_t mine = gettid();
    CHECK(mine > 0);
    CHECK(mine == sys_gettid());
    CHECK(mine != getpid());
    ids[i] = mine;
    pthread_barrier_wait(&all_started);  /* every worker alive at once */
    for (int r = 0; r < ROUNDS; r++) {
        if (r % 3 == 0) sched_yield();
        else if (r % 3 == 1) usleep(200);
        else pthread_barrier_wait(&ids_compared);  /* a parked wait; main takes part */
        CHECK(gettid() == mine);
        CHECK(sys_gettid() == mine);
    }
    return NULL;
}

static void ids_distinct_and_stable(void) {
    pthread_barrier_init(&all_started, NULL, THREADS + 1);
    pthread_barrier_init(&ids_compared, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_create(&handles[i], NULL, worker, (void *)(intptr_t)i), 0);
    pthread_barrier_wait(&all_started);
    int distinct = 1;
    for (int i = 0; i < THREADS; i++) {
        if (ids[i] == getpid() || ids[i] == gettid()) distinct = 0;
        for (int j = 0; j < i; j++)
            if (ids[i] == ids[j]) distinct = 0;
    }
    CHECK(distinct);
    for (int r = 0; r < ROUNDS; r++)
        if (r % 3 == 2) pthread_barrier_wait(&ids_compared);
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_join(handles[i], NULL), 0);
    pthread_barrier_destroy(&all_started);
    pthread_barrier_destroy(&ids_compared);
    printf("gettid: %d threads alive at once, ids distinct, equal to syscall(SYS_gettid), stable across sleeps and waits: %s\n",
           THREADS, distinct ? "yes" : "no");
}

/* tgkill with signal 0: a live thread is found, a joined one is gone. */
static volatile int holder_release;
static pid_t holder_id;

static void *holder(void *arg) {
    __atomic_store_n(&holder_id, gettid(), __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&holder_release, __ATOMIC_SEQ_CST)) usleep(500);
    return arg;
}

static void tgkill_finds_live_threads_only(void) {
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, holder, NULL), 0);
    while (!__atomic_load_n(&holder_id, __ATOMIC_SEQ_CST)) usleep(500);
    pid_t tid = holder_id;
    int live = sys_tgkill(getpid(), tid, 0);
    CHECK(live == 0);
    CHECK(sys_tgkill(getpid(), gettid(), 0) == 0);   /* main itself */
    __atomic_store_n(&holder_release, 1, __ATOMIC_SEQ_CST);
    CHECK_RC(pthread_join(t, NULL), 0);
    /* After the join the kernel may need a moment to release the task. */
    int rc = 0, e = 0;
    for (int tries = 0; tries < 2000; tries++) {
        errno = 0;
        rc = sys_tgkill(getpid(), tid, 0);
        e = errno;
        if (rc == -1) break;
        usleep(1000);
    }
    CHECK(rc == -1 && e == ESRCH);
    printf("tgkill signal 0: live thread %s, joined thread %s\n", live == 0 ? "0" : "FAIL",
           rc == -1 && e == ESRCH ? "ESRCH" : "FAIL");
}

/* fork from a thread: the child's only thread has the child's pid as id. */
static void *forker(void *arg) {
    (void)arg;
    pid_t before = gettid();
    pid_t pid = fork();
    if (pid == 0) {
        int ok = gettid() == getpid() && sys_gettid() == getpid() && getpid() != before;
        _exit(ok ? 0 : 3);
    }
    CHECK(pid > 0);
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(gettid() == before);
    printf("fork from a thread: child's gettid is its pid: %s\n",
           WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "yes" : "no");
    return NULL;
}

int main(void) {
    program_start(30);
    CHECK(gettid() == getpid());
    CHECK(sys_gettid() == getpid());
    printf("main: gettid == getpid: %s\n", gettid() == getpid() ? "yes" : "no");
    ids_distinct_and_stable();
    CHECK(gettid() == getpid());
    tgkill_finds_live_threads_only();
    pthread_t f;
    CHECK_RC(pthread_create(&f, NULL, forker, NULL), 0);
    CHECK_RC(pthread_join(f, NULL), 0);
    return program_end("gettid");
}
