// threadpool.c — the preload library's thread pool: native threads that run
// what cannot be made cooperative (DNS lookups, system()) while the calling
// fiber parks. Started on first use, so a program that never needs it keeps a
// single thread.
#include "preload.h"
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>

#define MAX_WORKERS 8

typedef struct job {
    void (*fn)(void *);
    void *arg;
    struct job *next;
    green_remote_wake wake; ///< the parked fiber, woken when fn has returned
} job;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; // libc's own (PREAL), never a fiber's
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static job *head, *tail;
static int workers, idle;

// The pool's lock and condition are libc's: this library's interposed ones
// would work too, but libc's keep the pool independent of the fiber layer.
typedef int (*cond_wait_fn)(pthread_cond_t *, pthread_mutex_t *);
typedef int (*cond_signal_fn)(pthread_cond_t *);
static cond_wait_fn real_cond_wait;
static cond_signal_fn real_cond_signal;

static void *worker_main(void *unused) {
    (void)unused;
    REAL(pthread_mutex_lock)(&lock);
    for (;;) {
        while (!head) {
            idle++;
            real_cond_wait(&work, &lock);
            idle--;
        }
        job *j = head;
        head = j->next;
        if (!head) tail = NULL;
        REAL(pthread_mutex_unlock)(&lock);
        j->fn(j->arg);
        green_wake_remote(&j->wake);
        REAL(pthread_mutex_lock)(&lock);
    }
    return NULL;
}


void preload_threadpool_after_fork_in_child(void) {
    pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_work = PTHREAD_COND_INITIALIZER;
    lock = fresh_lock;
    work = fresh_work;
    head = tail = NULL; // jobs of fibers that are gone
    workers = idle = 0;
}

int preload_run_blocking(void (*fn)(void *), void *arg) {
    if (!real_cond_wait) {
        real_cond_wait = (cond_wait_fn)dlsym(RTLD_NEXT, "pthread_cond_wait");
        real_cond_signal = (cond_signal_fn)dlsym(RTLD_NEXT, "pthread_cond_signal");
        if (!real_cond_wait || !real_cond_signal) return -1;
    }
    job j = {.fn = fn, .arg = arg, .wake = {.fiber = green_fiber_current()}};
    // Not preempted while it holds `lock`, a kernel mutex: pthread_create
    // calls the process's malloc, which may be a preloaded one (not libc's,
    // so preemptible), and another fiber of this hub would wait for `lock`
    // in the kernel, on the hub's own OS thread.
    preload_preempt_blocked++;
    REAL(pthread_mutex_lock)(&lock);
    if (idle == 0 && workers < MAX_WORKERS) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        // Workers block every signal (they inherit the mask of this moment):
        // a signal for the program must reach one of its threads, never a worker.
        sigset_t all, old;
        sigfillset(&all);
        GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8);
        if (PREAL(pthread_create)(&t, &attr, worker_main, NULL) == 0) {
            workers++;
            thread_block_wrap_setxid();
        }
        GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, 8);
        pthread_attr_destroy(&attr);
        if (workers == 0) {
            REAL(pthread_mutex_unlock)(&lock);
            preload_preempt_blocked--;
            return -1;
        }
        preload_log("thread pool: %d worker(s)", workers);
    }
    if (tail) tail->next = &j;
    else head = &j;
    tail = &j;
    real_cond_signal(&work);
    REAL(pthread_mutex_unlock)(&lock);
    preload_preempt_blocked--;
    green_set_wait_label("thread pool");
    while (!j.wake.delivered) green_park_until(GREEN_NO_DEADLINE, GREEN_PARK_UNINTERRUPTIBLE);
    return 0;
}
