// The program's own SIGURG handler: natively SIGURG is blocked while it runs
// (no SA_NODEFER), so a SIGURG raised inside it waits until it returns.
#include <pthread.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
static volatile int depth, maxdepth, calls;
static void on_urg(int s) {
    (void)s;
    if (++depth > maxdepth) maxdepth = depth;
    if (calls++ == 0) raise(SIGURG);
    depth--;
}
static void *nothing(void *a) { return a; }
int main(void) {
    alarm(20); /* a hang fails */
    pthread_t t; pthread_create(&t, NULL, nothing, NULL); pthread_join(t, NULL); // a second thread: preemption starts
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_urg; sigaction(SIGURG, &sa, NULL);
    raise(SIGURG);
    printf("calls %d, max nesting %d -> %s\n", calls, maxdepth, maxdepth == 1 ? "OK" : "FAIL");
    return maxdepth != 1;
}
