/* preempt_after_longjmp.c — a signal handler that leaves with siglongjmp
 * (legal natively) must not leave the thread, or the process, unpreemptible:
 * afterwards a spin-wait on a flag another thread sets still ends. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static sigjmp_buf env;
static void on_usr1(int s) { (void)s; siglongjmp(env, 1); }
static volatile int flag;
static void *setter(void *a) { (void)a; flag = 1; return NULL; }
int main(void) {
    alarm(20); /* a hang fails */
    signal(SIGUSR1, on_usr1);
    if (sigsetjmp(env, 1) == 0) raise(SIGUSR1); /* the handler jumps back here */
    pthread_t t;
    pthread_create(&t, NULL, setter, NULL);
    while (!flag) ; /* spin-wait: needs the setter to run */
    pthread_join(t, NULL);
    puts("spin-wait after a handler left with siglongjmp: ended");
    return 0;
}
