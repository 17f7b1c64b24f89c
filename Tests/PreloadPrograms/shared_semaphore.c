/* shared_semaphore.c — process-shared semaphores (sem_open, and sem_init with
 * pshared in shared memory) wake waiters in other processes: forked children
 * under the same library, and a native process (re-exec'ed without
 * LD_PRELOAD) on either side of the wait. Python's multiprocessing.Lock is a
 * sem_open semaphore shared this way. */
#include "check.h"
#include <fcntl.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define CHILDREN 4
#define ROUNDS 300

/* Children take turns in a critical section guarded by a named semaphore. */
static void counter_under_named_lock(void) {
    char name[64];
    snprintf(name, sizeof name, "/green-shared-sem-%d", (int)getpid());
    sem_t *lock = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
    CHECK(lock != SEM_FAILED);
    if (lock == SEM_FAILED) return;
    sem_unlink(name);
    volatile long *counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *counter = 0;
    pid_t kids[CHILDREN];
    for (int i = 0; i < CHILDREN; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            for (int r = 0; r < ROUNDS; r++) {
                if (sem_wait(lock) != 0) _exit(2);
                long c = *counter;
                if (r % 16 == 0) sleep_ms(1); /* hold it across a block: the others must wait */
                *counter = c + 1;
                sem_post(lock);
            }
            _exit(0);
        }
    }
    int ok = 1;
    for (int i = 0; i < CHILDREN; i++) {
        int st = 0;
        waitpid(kids[i], &st, 0);
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    CHECK(ok);
    CHECK(*counter == CHILDREN * ROUNDS);
    printf("named: %d processes, counter %ld (expected %d)\n", CHILDREN, *counter, CHILDREN * ROUNDS);
    sem_close(lock);
}

/* Ping-pong through two unnamed pshared semaphores in shared memory. */
static void ping_pong(const char *self, int native_child) {
    char path[] = "/tmp/green-sem-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && ftruncate(fd, 4096) == 0);
    sem_t *sems = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(sem_init(&sems[0], 1, 0) == 0 && sem_init(&sems[1], 1, 0) == 0);
    pid_t kid = fork();
    if (kid == 0) {
        if (native_child) {
            unsetenv("LD_PRELOAD");
            execl(self, self, "pong", path, (char *)NULL);
            _exit(3);
        }
        for (int r = 0; r < ROUNDS; r++) {
            if (sem_wait(&sems[0]) != 0) _exit(2);
            sem_post(&sems[1]);
        }
        _exit(0);
    }
    int answered = 0;
    for (int r = 0; r < ROUNDS; r++) {
        sem_post(&sems[0]);
        struct timespec limit = deadline_after(CLOCK_REALTIME, 10000);
        if (sem_timedwait(&sems[1], &limit) != 0) break;
        answered++;
    }
    int st = 0;
    waitpid(kid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(answered == ROUNDS);
    printf("ping-pong with a %s child: %d of %d answered\n", native_child ? "native" : "forked", answered, ROUNDS);
    unlink(path);
    close(fd);
}

/* The native side of ping_pong: waits in the kernel, posts to a fiber. */
static int pong(const char *path) {
    int fd = open(path, O_RDWR);
    if (fd < 0) return 4;
    sem_t *sems = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    for (int r = 0; r < ROUNDS; r++) {
        if (sem_wait(&sems[0]) != 0) return 2;
        sem_post(&sems[1]);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "pong") == 0) return pong(argv[2]);
    program_start(60);
    counter_under_named_lock();
    ping_pong(argv[0], 0);
    ping_pong("/proc/self/exe", 1);
    return program_end("shared_semaphore");
}
