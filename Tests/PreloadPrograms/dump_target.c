/* dump_target.c — a few threads parked in different calls, for the fiber
 * dump test: "worker" waits for a mutex main holds, "sleeper" sleeps, main
 * says "ready" and sleeps 2 s before letting them go. */
#include "check.h"

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    return arg;
}

static void *sleeper(void *arg) {
    sleep_ms(2000);
    return arg;
}

int main(void) {
    program_start(30);
    pthread_t w, s;
    pthread_mutex_lock(&held);
    CHECK_RC(pthread_create(&w, NULL, worker, NULL), 0);
    CHECK_RC(pthread_create(&s, NULL, sleeper, NULL), 0);
    CHECK_RC(pthread_setname_np(w, "worker"), 0);
    CHECK_RC(pthread_setname_np(s, "sleeper"), 0);
    sleep_ms(50); /* let them park */
    printf("ready\n");
    sleep_ms(2000);
    pthread_mutex_unlock(&held);
    CHECK_RC(pthread_join(w, NULL), 0);
    CHECK_RC(pthread_join(s, NULL), 0);
    return program_end("dump_target");
}
