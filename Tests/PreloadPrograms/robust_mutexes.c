/* robust_mutexes.c — robust and priority-inheritance mutexes shared by
 * threads as glibc's: a thread waits while another holds one (and holds it
 * across a sleep), a recursive or error-checking one tells its owner from
 * the other threads, a thread that ends holding a robust one hands the next
 * locker EOWNERDEAD (also a locker already waiting), pthread_mutex_consistent
 * makes it usable again and an unlock without it makes it unrecoverable. */
#include "check.h"
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static pthread_mutex_t m;
static int shared_count;
static volatile int holding;

static void make(int robust, int protocol, int type) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setprotocol(&a, protocol);
    pthread_mutexattr_settype(&a, type);
    CHECK_RC(pthread_mutex_init(&m, &a), 0);
    pthread_mutexattr_destroy(&a);
}

/* Each of 4 threads adds 1,000 times under the lock, sleeping while it
 * holds it now and then: the others must wait (and not take it as theirs). */
static void *adder(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        CHECK_RC(pthread_mutex_lock(&m), 0);
        int seen = shared_count;
        if (i % 100 == 0) usleep(1000);
        shared_count = seen + 1;
        CHECK_RC(pthread_mutex_unlock(&m), 0);
    }
    return NULL;
}

static void contend(const char *name) {
    shared_count = 0;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK_RC(pthread_create(&t[i], NULL, adder, NULL), 0);
    for (int i = 0; i < 4; i++) CHECK_RC(pthread_join(t[i], NULL), 0);
    printf("%s: 4 threads counted %d under the lock\n", name, shared_count);
    CHECK(shared_count == 4000);
}

static void *lock_and_hold(void *arg) {
    (void)arg;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    __atomic_store_n(&holding, 1, __ATOMIC_SEQ_CST);
    usleep(100 * 1000);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    return NULL;
}

static void *lock_and_end(void *arg) {
    CHECK_RC(pthread_mutex_lock(&m), 0);
    __atomic_store_n(&holding, 1, __ATOMIC_SEQ_CST);
    if (arg) usleep(200 * 1000); // a locker comes to wait meanwhile
    return NULL; // ends holding it
}

/* Locks, then unlocks without pthread_mutex_consistent. */
static int waiter_unlock = -1;
static void *lock_then_unlock(void *arg) {
    (void)arg;
    int r = pthread_mutex_lock(&m);
    waiter_unlock = pthread_mutex_unlock(&m);
    return (void *)(intptr_t)r;
}

static void wait_holding(void) {
    while (!__atomic_load_n(&holding, __ATOMIC_SEQ_CST)) usleep(1000);
}

/* Another thread holds it: trylock EBUSY, timedlock ETIMEDOUT, unlock EPERM. */
static void others_see_it_held(const char *name) {
    holding = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, lock_and_hold, NULL), 0);
    wait_holding();
    int busy = pthread_mutex_trylock(&m);
    struct timespec soon;
    clock_gettime(CLOCK_REALTIME, &soon);
    soon.tv_nsec += 10 * 1000 * 1000;
    if (soon.tv_nsec >= 1000000000) { soon.tv_sec++; soon.tv_nsec -= 1000000000; }
    int timed = pthread_mutex_timedlock(&m, &soon);
    int unlock = pthread_mutex_unlock(&m);
    int then = pthread_mutex_lock(&m); // waits for the holder
    printf("%s held by another thread: trylock %s, timedlock %s, unlock %s; lock after it %s\n", name,
           strerror(busy), strerror(timed), strerror(unlock), strerror(then));
    CHECK_RC(busy, EBUSY);
    CHECK_RC(timed, ETIMEDOUT);
    CHECK_RC(unlock, EPERM);
    CHECK_RC(then, 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
}

static void owner_ends(void) {
    make(1, PTHREAD_PRIO_NONE, PTHREAD_MUTEX_NORMAL);
    holding = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, lock_and_end, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    int first = pthread_mutex_lock(&m);
    int consistent = pthread_mutex_consistent(&m);
    int again = pthread_mutex_consistent(&m);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    int later = pthread_mutex_lock(&m);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    printf("owner ended holding it: lock %s, consistent %d then %s, a later lock %s\n", strerror(first), consistent,
           strerror(again), strerror(later));
    CHECK_RC(first, EOWNERDEAD);
    CHECK_RC(consistent, 0);
    CHECK_RC(again, EINVAL);
    CHECK_RC(later, 0);

    // The next locker was already waiting when the owner ended.
    holding = 0;
    pthread_t owner, waiter;
    CHECK_RC(pthread_create(&owner, NULL, lock_and_end, (void *)1), 0);
    wait_holding();
    CHECK_RC(pthread_create(&waiter, NULL, lock_then_unlock, NULL), 0);
    void *got;
    CHECK_RC(pthread_join(waiter, &got), 0);
    CHECK_RC(pthread_join(owner, NULL), 0);
    // Unlocked without pthread_mutex_consistent: nobody can have it again.
    int unlock = waiter_unlock;
    int after = pthread_mutex_lock(&m);
    int try_after = pthread_mutex_trylock(&m);
    printf("a waiter when the owner ended: %s; unlocked inconsistent: unlock %d, lock %s, trylock %s\n",
           strerror((int)(intptr_t)got), unlock, strerror(after), strerror(try_after));
    CHECK_RC((int)(intptr_t)got, EOWNERDEAD);
    CHECK_RC(unlock, 0);
    CHECK_RC(after, ENOTRECOVERABLE);
    CHECK_RC(try_after, ENOTRECOVERABLE);
    CHECK_RC(pthread_mutex_destroy(&m), 0);
}

/* A thread that waits on a condition gets the mutex back from an owner
 * that signalled and ended holding it: pthread_cond_wait says EOWNERDEAD. */
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int signalled;
static void *signal_and_end(void *arg) {
    (void)arg;
    CHECK_RC(pthread_mutex_lock(&m), 0);
    signalled = 1;
    CHECK_RC(pthread_cond_signal(&cond), 0);
    return NULL; // ends holding it
}

static void condition_wait_after_owner_ends(void) {
    make(1, PTHREAD_PRIO_NONE, PTHREAD_MUTEX_NORMAL);
    CHECK_RC(pthread_mutex_lock(&m), 0);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, signal_and_end, NULL), 0);
    int r = 0;
    while (!signalled && r == 0) r = pthread_cond_wait(&cond, &m);
    printf("condition wait, the signaller ended holding the mutex: %s\n", strerror(r));
    CHECK_RC(r, EOWNERDEAD);
    CHECK_RC(pthread_mutex_consistent(&m), 0);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    CHECK_RC(pthread_mutex_destroy(&m), 0);
}

/* A process-shared recursive robust mutex held by a thread of this process
 * is not a thread's of a fork child: its threads get EBUSY and EPERM. (Each
 * green process numbered its threads from the same first id, so the
 * child's first thread took the parent's first thread's lock as its own.) */
static pthread_mutex_t *shared_m;
static int held_pipe[2], done_pipe[2];
static char child_answer;
static void *hold_while_child_tries(void *arg) {
    (void)arg;
    CHECK_RC(pthread_mutex_lock(shared_m), 0);
    CHECK(write(held_pipe[1], "h", 1) == 1);
    CHECK(read(done_pipe[0], &child_answer, 1) == 1);
    CHECK_RC(pthread_mutex_unlock(shared_m), 0);
    return NULL;
}

static void *child_tries(void *arg) {
    int *out = arg;
    out[0] = pthread_mutex_trylock(shared_m);
    out[1] = pthread_mutex_unlock(shared_m);
    return NULL;
}

static void shared_across_processes(void) {
    shared_m = mmap(NULL, sizeof *shared_m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shared_m != MAP_FAILED);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    CHECK_RC(pthread_mutex_init(shared_m, &a), 0);
    CHECK(pipe(held_pipe) == 0 && pipe(done_pipe) == 0);
    pid_t pid = fork();
    if (pid == 0) { /* the child: its first thread tries once the parent's first thread holds it */
        char c;
        if (read(held_pipe[0], &c, 1) != 1) _exit(3);
        pthread_t t;
        int out[2] = {-1, -1};
        pthread_create(&t, NULL, child_tries, out);
        pthread_join(t, NULL);
        char answer = out[0] == EBUSY && out[1] == EPERM ? 'y' : 'n';
        if (write(done_pipe[1], &answer, 1) != 1) _exit(3);
        _exit(0);
    }
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, hold_while_child_tries, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char answer = child_answer;
    printf("process-shared recursive, held by a thread of another process: EBUSY and EPERM %s\n",
           answer == 'y' ? "yes" : "no");
    CHECK(answer == 'y');
    for (int i = 0; i < 2; i++) {
        close(held_pipe[i]);
        close(done_pipe[i]);
    }
    munmap(shared_m, sizeof *shared_m);
}

static void self_relock(const char *name, int type, int want_lock, int want_try) { /* as glibc: EDEADLK from an error-checking one */
    int first = pthread_mutex_lock(&m);
    int relock = pthread_mutex_lock(&m);
    int retry = pthread_mutex_trylock(&m);
    CHECK_RC(first, 0);
    CHECK_RC(relock, want_lock);
    CHECK_RC(retry, want_try);
    int unlocks = 0;
    while (pthread_mutex_unlock(&m) == 0 && unlocks < 5) unlocks++;
    printf("%s relocked by its owner: lock %s, trylock %s, unlocks until EPERM %d\n", name, strerror(relock),
           strerror(retry), unlocks);
    CHECK(unlocks == (type == PTHREAD_MUTEX_RECURSIVE ? 3 : 1));
}

/* `handover`: a thread that unlocks and at once locks again, in a loop that
 * sleeps while it holds the lock, lets a waiting thread in. (Natively that
 * depends on the scheduler; on one hub a fiber that wakes a waiter lets it
 * run first, as for default mutexes. The library's robust and PI mutexes
 * did not: the waiter waited for ever.) */
static volatile int waiter_got;
static void *relocker(void *arg) {
    (void)arg;
    int i = 0; /* rounds until the waiter had it */
    for (; i < 2000 && !__atomic_load_n(&waiter_got, __ATOMIC_SEQ_CST); i++) {
        CHECK_RC(pthread_mutex_lock(&m), 0);
        usleep(1000);
        CHECK_RC(pthread_mutex_unlock(&m), 0);
    }
    return (void *)(intptr_t)i;
}

static void *late_locker(void *arg) {
    (void)arg;
    usleep(20 * 1000);
    CHECK_RC(pthread_mutex_lock(&m), 0);
    __atomic_store_n(&waiter_got, 1, __ATOMIC_SEQ_CST);
    CHECK_RC(pthread_mutex_unlock(&m), 0);
    return NULL;
}

static int handover(void) {
    const char *names[] = {"robust", "priority-inheritance", "robust process-shared", "default process-shared"};
    for (int k = 0; k < 4; k++) {
        make(k != 1, k == 1 ? PTHREAD_PRIO_INHERIT : PTHREAD_PRIO_NONE, PTHREAD_MUTEX_NORMAL);
        if (k >= 2) { /* made again, process-shared */
            pthread_mutexattr_t a;
            pthread_mutexattr_init(&a);
            if (k == 2) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
            pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
            CHECK_RC(pthread_mutex_destroy(&m), 0);
            CHECK_RC(pthread_mutex_init(&m, &a), 0);
        }
        waiter_got = 0;
        pthread_t a, b;
        CHECK_RC(pthread_create(&a, NULL, relocker, NULL), 0);
        CHECK_RC(pthread_create(&b, NULL, late_locker, NULL), 0);
        void *rounds;
        CHECK_RC(pthread_join(b, NULL), 0);
        CHECK_RC(pthread_join(a, &rounds), 0);
        int in_time = (intptr_t)rounds < 2000; /* not only once the relocker gave up */
        printf("%s: a waiter gets it from a thread that locks again at once: %s\n", names[k], in_time ? "yes" : "no");
        CHECK(in_time);
        CHECK_RC(pthread_mutex_destroy(&m), 0);
    }
    return program_end("robust_mutexes handover");
}

/* `main_exits`: main ends with pthread_exit holding a robust mutex; a
 * thread waiting for it gets EOWNERDEAD (the kernel's work at main's exit;
 * under green run main's OS thread lives on). */
static void *wait_for_main(void *arg) {
    (void)arg;
    int r = pthread_mutex_lock(&m);
    printf("main ended holding it: the waiter's lock %s\n", strerror(r));
    CHECK_RC(r, EOWNERDEAD);
    exit(program_end("robust_mutexes main_exits"));
}

static void main_exits(void) {
    make(1, PTHREAD_PRIO_NONE, PTHREAD_MUTEX_NORMAL);
    CHECK_RC(pthread_mutex_lock(&m), 0);
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, wait_for_main, NULL), 0);
    usleep(20 * 1000);
    pthread_exit(NULL);
}

int main(int argc, char **argv) {
    program_start(60);
    if (argc > 1 && strcmp(argv[1], "handover") == 0) return handover();
    if (argc > 1 && strcmp(argv[1], "main_exits") == 0) main_exits();
    struct { const char *name; int robust, protocol; } kinds[] = {
        {"robust", 1, PTHREAD_PRIO_NONE},
        {"priority-inheritance", 0, PTHREAD_PRIO_INHERIT},
        {"robust priority-inheritance", 1, PTHREAD_PRIO_INHERIT},
    };
    for (int k = 0; k < 3; k++) {
        char name[96];
        make(kinds[k].robust, kinds[k].protocol, PTHREAD_MUTEX_NORMAL);
        contend(kinds[k].name);
        others_see_it_held(kinds[k].name);
        CHECK_RC(pthread_mutex_destroy(&m), 0);
        snprintf(name, sizeof name, "%s recursive", kinds[k].name);
        make(kinds[k].robust, kinds[k].protocol, PTHREAD_MUTEX_RECURSIVE);
        others_see_it_held(name);
        self_relock(name, PTHREAD_MUTEX_RECURSIVE, 0, 0);
        CHECK_RC(pthread_mutex_destroy(&m), 0);
        snprintf(name, sizeof name, "%s error-checking", kinds[k].name);
        make(kinds[k].robust, kinds[k].protocol, PTHREAD_MUTEX_ERRORCHECK);
        others_see_it_held(name);
        self_relock(name, PTHREAD_MUTEX_ERRORCHECK, EDEADLK, EDEADLK);
        CHECK_RC(pthread_mutex_destroy(&m), 0);
    }
    owner_ends();
    condition_wait_after_owner_ends();
    shared_across_processes();
    if (check_failures) return 1;
    printf("robust_mutexes: all checks passed\n");
    return 0;
}
