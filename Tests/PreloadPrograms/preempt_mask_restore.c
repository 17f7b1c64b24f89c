// A thread is preempted while every thread blocks SIGALRM; meanwhile main
// unblocks it. When the preempted thread resumes, the kernel's sigreturn
// reloads the mask saved at delivery, which blocked SIGALRM: the library
// must put back the one the threads want now, or SIGALRM is never handled.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static void on_alrm(int s) { (void)s; got = 1; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void *spin(void *a) {
    (void)a;
    double end = now() + 0.05;
    while (now() < end) ;           // preempted in here
    for (;;) sleep(10);
    return NULL;
}
int main(void) {
    signal(SIGALRM, on_alrm);
    sigset_t s; sigemptyset(&s); sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);  // main, and T by inheritance
    pthread_t t; pthread_create(&t, NULL, spin, NULL);
    usleep(1000);                          // T runs, is preempted
    pthread_sigmask(SIG_UNBLOCK, &s, NULL); // main takes SIGALRM now
    usleep(100000);                        // T resumes and returns from the SIGURG handler
    alarm(1);
    for (int i = 0; i < 30 && !got; i++) usleep(100000);
    printf("%s\n", got ? "OK: SIGALRM handled" : "FAIL: SIGALRM never handled");
    return !got;
}
