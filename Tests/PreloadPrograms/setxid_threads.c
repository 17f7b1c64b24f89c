/* setxid_threads.c — threads call setgid, setuid and setresuid (each to
 * the ids the process has: allowed without privileges) while other threads
 * spin, and so does main. With more than one thread glibc signals every
 * thread on its lists (SIGSETXID) and waits until each one's handler has
 * cleared its mark; a call that never returns shows up as the watchdog's
 * signal. */
#include "check.h"
#include <sys/types.h>

static volatile int stop;

static void *spin(void *arg) {
    while (!stop) __asm__ volatile("" ::: "memory"); /* runs: its hub's OS thread has it loaded */
    return arg;
}

static void *set_ids(void *arg) {
    CHECK(setgid(getgid()) == 0);
    CHECK(setuid(getuid()) == 0);
    CHECK(setresuid((uid_t)-1, (uid_t)-1, (uid_t)-1) == 0);
    return arg;
}

int main(void) {
    program_start(30);
    pthread_t spinners[2];
    for (int i = 0; i < 2; i++) CHECK_RC(pthread_create(&spinners[i], NULL, spin, NULL), 0);
    for (int round = 0; round < 20; round++) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++) CHECK_RC(pthread_create(&t[i], NULL, set_ids, NULL), 0);
        for (int i = 0; i < 4; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    }
    set_ids(NULL);
    stop = 1;
    for (int i = 0; i < 2; i++) CHECK_RC(pthread_join(spinners[i], NULL), 0);
    printf("set*id from threads: ok\n");
    return program_end("setxid_threads");
}
