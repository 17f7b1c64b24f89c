/* fork_from_threads.c — threads fork, on whichever hub they run, and each
 * child makes and joins threads of its own (starting its own hubs), asks
 * glibc to walk its thread lists (setgid), then forks again from a thread,
 * three levels deep. A child that crashes, hangs or fails says so in its
 * exit status.
 *
 * glibc's fork puts the forking thread's descriptor on its list of stacks in
 * use; under green run that descriptor lives on the fiber thread's stack,
 * which is reused once the thread ends (thread_block.c takes it off). */
#include "check.h"
#include <sys/wait.h>

static int depth;

static void *dirty(void *arg) {
    char buf[8192];
    memset(buf, 0x5a, sizeof buf); /* dirty the top of its stack, reused by the next thread */
    __asm__ volatile("" : : "r"(buf) : "memory"); /* the writes stay */
    return arg;
}

static void *forker(void *arg);

static int child_work(void) {
    for (int round = 0; round < 10; round++) {
        pthread_t t[16];
        for (int i = 0; i < 16; i++)
            if (pthread_create(&t[i], NULL, dirty, NULL) != 0) return 2;
        for (int i = 0; i < 16; i++) pthread_join(t[i], NULL);
    }
    if (setgid(getgid()) != 0) return 3; /* glibc signals every thread it lists */
    if (depth < 3) {
        depth++;
        pthread_t t;
        void *r = NULL;
        if (pthread_create(&t, NULL, forker, NULL) != 0) return 2;
        pthread_join(t, &r);
        if (r) return 4;
    }
    return 0;
}

static void *forker(void *arg) {
    (void)arg;
    pid_t p = fork();
    if (p == 0) {
        alarm(30);
        _exit(child_work());
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) != p) return (void *)1;
    return (void *)(intptr_t)(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

int main(void) {
    program_start(120);
    int bad = 0;
    for (int i = 0; i < 6; i++) { /* under --hubs=2 some run on hub 1 */
        pthread_t t;
        void *r = NULL;
        CHECK_RC(pthread_create(&t, NULL, forker, NULL), 0);
        CHECK_RC(pthread_join(t, &r), 0);
        if (r) printf("fork %d: child exit status %ld\n", i, (long)(intptr_t)r);
        bad += r != NULL;
    }
    printf("forks from threads, three levels deep: %s\n", bad ? "FAIL" : "ok");
    CHECK(bad == 0);
    return program_end("fork_from_threads");
}
