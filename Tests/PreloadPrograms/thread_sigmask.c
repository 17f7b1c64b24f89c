/* thread_sigmask.c — every thread has a signal mask of its own:
 *  - a thread that blocks every signal with pthread_sigmask reads back a mask
 *    with all of them blocked, while main's mask, read at the same time, is
 *    unchanged;
 *  - a process-directed signal (SIGALRM from alarm, SIGTERM from
 *    kill(getpid())) is handled once, by a thread that does not block it:
 *    never by the blocking thread, and by the one thread left that does not
 *    block it when main blocks it too;
 *  - a signal sent to one thread (tgkill with its gettid, pthread_kill) runs
 *    the handler in that thread;
 *  - pthread_kill(self, SIGUSR1) while the thread blocks SIGUSR1 leaves it
 *    pending for that thread (sigpending there shows it, main's does not),
 *    and unblocking it runs the handler in that thread;
 *  - a child started by fork+exec or posix_spawn from a thread that blocks
 *    SIGUSR2 starts with SIGUSR2 blocked (SigBlk of /proc/self/status); a
 *    child of main does not.
 * Arguments name the sections to run: process, directed, pending, children
 * (default: all). */
#include "check.h"
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

/* What a handler saw: how often it ran, and in which thread. */
struct seen {
    volatile sig_atomic_t count;
    pthread_t thread;
    pid_t tid;
};
static struct seen alrm_seen, term_seen, usr1_seen;

static void on_signal(int sig) {
    struct seen *s = sig == SIGALRM ? &alrm_seen : sig == SIGTERM ? &term_seen : &usr1_seen;
    s->thread = pthread_self();
    s->tid = gettid();
    s->count++;
}

static void install(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

/* Waits (bounded) until the handler has run `count` times. */
static void wait_handled(struct seen *s, int count) {
    for (int i = 0; i < 3000 && s->count < count; i++) sleep_ms(1);
}

static sigset_t current_mask(void) {
    sigset_t m;
    sigemptyset(&m);
    CHECK_RC(pthread_sigmask(SIG_SETMASK, NULL, &m), 0);
    return m;
}

/* Every signal a thread can block: 1..31 but SIGKILL and SIGSTOP, and the
 * real-time signals glibc leaves to programs. */
static int all_blocked(const sigset_t *m) {
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && !sigismember(m, sig)) return 0;
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        if (!sigismember(m, sig)) return 0;
    return 1;
}

/* A small step protocol between main and the threads (no signals involved). */
static int step;
static void set_step(int s) { __atomic_store_n(&step, s, __ATOMIC_SEQ_CST); }
static void wait_step(int s) {
    for (int i = 0; i < 20000 && __atomic_load_n(&step, __ATOMIC_SEQ_CST) < s; i++) sleep_ms(1);
    CHECK(__atomic_load_n(&step, __ATOMIC_SEQ_CST) >= s);
}

static pthread_t blocker_handle, receiver_handle;
static int blocker_mask_all, blocker_nothing_pending;

static void *blocker(void *arg) {
    sigset_t all;
    sigfillset(&all);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &all, NULL), 0);
    sigset_t m = current_mask();
    blocker_mask_all = all_blocked(&m);
    CHECK(blocker_mask_all);
    set_step(1);
    wait_step(4);  /* main sent SIGALRM and SIGTERM meanwhile; they went elsewhere */
    m = current_mask();
    CHECK(all_blocked(&m));
    sigset_t pending;
    sigemptyset(&pending);
    CHECK(sigpending(&pending) == 0);
    blocker_nothing_pending = !sigismember(&pending, SIGALRM) && !sigismember(&pending, SIGTERM);
    CHECK(blocker_nothing_pending);
    return arg;
}

static void *receiver(void *arg) {
    wait_step(4);  /* sleeps; the handlers may interrupt it */
    sigset_t m = current_mask();
    CHECK(!sigismember(&m, SIGALRM) && !sigismember(&m, SIGTERM));
    return arg;
}

static void process_signals_avoid_blocking_threads(void) {
    install(SIGALRM);
    install(SIGTERM);
    CHECK_RC(pthread_create(&blocker_handle, NULL, blocker, NULL), 0);
    wait_step(1);
    CHECK_RC(pthread_create(&receiver_handle, NULL, receiver, NULL), 0);

    /* The blocker's mask is its own: main's is as it was. */
    sigset_t m = current_mask();
    int main_unchanged = !sigismember(&m, SIGALRM) && !sigismember(&m, SIGTERM) && !sigismember(&m, SIGUSR1) &&
                         !all_blocked(&m);
    CHECK(main_unchanged);
    printf("pthread_sigmask: blocking thread reads back all blocked: %s; main's mask unchanged: %s\n",
           blocker_mask_all ? "yes" : "no", main_unchanged ? "yes" : "no");

    /* SIGALRM: main and the receiver leave it unblocked, so one of them. */
    alarm(1);
    wait_handled(&alrm_seen, 1);
    alarm(30);  /* the watchdog again */
    int alrm_ok = alrm_seen.count == 1 && !pthread_equal(alrm_seen.thread, blocker_handle);
    CHECK(alrm_seen.count == 1);
    CHECK(!pthread_equal(alrm_seen.thread, blocker_handle));
    printf("SIGALRM from alarm: handled once, not by the blocking thread: %s\n", alrm_ok ? "yes" : "no");

    /* SIGTERM, main blocks it too: only the receiver can take it. */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &term, NULL), 0);
    CHECK(kill(getpid(), SIGTERM) == 0);
    wait_handled(&term_seen, 1);
    int term_ok = term_seen.count == 1 && pthread_equal(term_seen.thread, receiver_handle);
    CHECK(term_seen.count == 1);
    CHECK(pthread_equal(term_seen.thread, receiver_handle));
    sigset_t pending;
    sigemptyset(&pending);
    CHECK(sigpending(&pending) == 0);
    CHECK(!sigismember(&pending, SIGTERM));
    CHECK_RC(pthread_sigmask(SIG_UNBLOCK, &term, NULL), 0);
    CHECK(term_seen.count == 1);  /* it was not left pending for main */
    printf("SIGTERM from kill(getpid()) while main blocks it: handled once, by the one thread not blocking it: %s\n",
           term_ok ? "yes" : "no");

    set_step(4);
    CHECK_RC(pthread_join(blocker_handle, NULL), 0);
    CHECK_RC(pthread_join(receiver_handle, NULL), 0);
    printf("blocking thread: nothing pending for it: %s\n", blocker_nothing_pending ? "yes" : "no");
    signal(SIGALRM, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

/* Signals sent to one thread, by tgkill and by pthread_kill, run there. */
static pid_t target_tid;
static volatile int target_release;

static void *target(void *arg) {
    __atomic_store_n(&target_tid, gettid(), __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&target_release, __ATOMIC_SEQ_CST)) sleep_ms(1);
    return arg;
}

static void thread_directed_signals_run_in_their_target(void) {
    install(SIGUSR1);
    usr1_seen.count = 0;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, target, NULL), 0);
    for (int i = 0; i < 10000 && !__atomic_load_n(&target_tid, __ATOMIC_SEQ_CST); i++) sleep_ms(1);
    pid_t tid = __atomic_load_n(&target_tid, __ATOMIC_SEQ_CST);
    CHECK(tid > 0 && tid != gettid());
    CHECK(syscall(SYS_tgkill, getpid(), tid, SIGUSR1) == 0);
    wait_handled(&usr1_seen, 1);
    int by_tgkill = usr1_seen.count == 1 && pthread_equal(usr1_seen.thread, t) && usr1_seen.tid == tid;
    CHECK(usr1_seen.count == 1);
    CHECK(pthread_equal(usr1_seen.thread, t));
    CHECK(usr1_seen.tid == tid);
    CHECK_RC(pthread_kill(t, SIGUSR1), 0);
    wait_handled(&usr1_seen, 2);
    int by_pthread_kill = usr1_seen.count == 2 && pthread_equal(usr1_seen.thread, t) && usr1_seen.tid == tid;
    CHECK(usr1_seen.count == 2);
    CHECK(pthread_equal(usr1_seen.thread, t));
    CHECK(usr1_seen.tid == tid);
    __atomic_store_n(&target_release, 1, __ATOMIC_SEQ_CST);
    CHECK_RC(pthread_join(t, NULL), 0);
    usr1_seen.count = 0;
    signal(SIGUSR1, SIG_DFL);
    printf("SIGUSR1 to one thread: by tgkill handled in that thread: %s; by pthread_kill: %s\n",
           by_tgkill ? "yes" : "no", by_pthread_kill ? "yes" : "no");
}

/* pthread_kill to oneself while blocked: pending for this thread only. */
static pthread_t pender_handle;
static int pender_pending, pender_not_yet, pender_handled_here;

static void *pender(void *arg) {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
    CHECK_RC(pthread_kill(pthread_self(), SIGUSR1), 0);
    sigset_t pending;
    sigemptyset(&pending);
    CHECK(sigpending(&pending) == 0);
    pender_pending = sigismember(&pending, SIGUSR1) == 1;
    CHECK(pender_pending);
    pender_not_yet = usr1_seen.count == 0;
    CHECK(pender_not_yet);
    set_step(6);
    wait_step(7);  /* main looked at its own pending set */
    CHECK(usr1_seen.count == 0);
    CHECK_RC(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);  /* delivered before this returns */
    pender_handled_here = usr1_seen.count == 1 && pthread_equal(usr1_seen.thread, pthread_self());
    CHECK(usr1_seen.count == 1);
    CHECK(pthread_equal(usr1_seen.thread, pthread_self()));
    sigemptyset(&pending);
    CHECK(sigpending(&pending) == 0);
    CHECK(!sigismember(&pending, SIGUSR1));
    return arg;
}

static void thread_directed_signal_pends_in_its_thread(void) {
    install(SIGUSR1);
    CHECK_RC(pthread_create(&pender_handle, NULL, pender, NULL), 0);
    wait_step(6);
    sigset_t pending;
    sigemptyset(&pending);
    CHECK(sigpending(&pending) == 0);
    int main_clear = !sigismember(&pending, SIGUSR1);
    CHECK(main_clear);
    set_step(7);
    CHECK_RC(pthread_join(pender_handle, NULL), 0);
    printf("pthread_kill(self) while blocked: pending in that thread: %s, not in main: %s, not handled yet: %s; "
           "unblocking runs the handler in that thread: %s\n",
           pender_pending ? "yes" : "no", main_clear ? "yes" : "no", pender_not_yet ? "yes" : "no",
           pender_handled_here ? "yes" : "no");
    signal(SIGUSR1, SIG_DFL);
}

/* The blocked set of a child: grep SigBlk /proc/self/status, run either by
 * fork+exec or by posix_spawn; returns the mask (or ~0 on failure). */
static unsigned long long child_sigblk(int use_spawn) {
    int p[2];
    CHECK(pipe(p) == 0);
    char *argv[] = {"grep", "SigBlk", "/proc/self/status", NULL};
    pid_t pid = -1;
    if (use_spawn) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        posix_spawn_file_actions_addclose(&fa, p[0]);
        posix_spawn_file_actions_addclose(&fa, p[1]);
        CHECK_RC(posix_spawnp(&pid, "grep", &fa, NULL, argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
    } else {
        pid = fork();
        if (pid == 0) {
            dup2(p[1], 1);
            close(p[0]);
            close(p[1]);
            execvp("grep", argv);
            _exit(127);
        }
    }
    close(p[1]);
    char buf[256];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(p[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    close(p[0]);
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unsigned long long mask = ~0ULL;
    if (sscanf(buf, "SigBlk: %llx", &mask) != 1) {
        printf("FAIL child printed \"%s\"\n", buf);
        check_failures++;
    }
    return mask;
}

#define BIT(sig) (1ULL << ((sig) - 1))

static int spawned_blocked[2];

static void *spawner(void *arg) {
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK_RC(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0);
    usleep(1000);  /* others run meanwhile */
    for (int spawn = 0; spawn < 2; spawn++) {
        spawned_blocked[spawn] = (child_sigblk(spawn) & BIT(SIGUSR2)) != 0;
        CHECK(spawned_blocked[spawn]);
    }
    return arg;
}

static void children_inherit_their_threads_mask(void) {
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, spawner, NULL), 0);
    CHECK_RC(pthread_join(t, NULL), 0);
    int from_main[2];
    for (int spawn = 0; spawn < 2; spawn++) {
        from_main[spawn] = (child_sigblk(spawn) & BIT(SIGUSR2)) != 0;
        CHECK(!from_main[spawn]);
    }
    printf("child of a thread blocking SIGUSR2: fork+exec %s, posix_spawn %s; child of main: fork+exec %s, posix_spawn %s\n",
           spawned_blocked[0] ? "blocked" : "unblocked", spawned_blocked[1] ? "blocked" : "unblocked",
           from_main[0] ? "blocked" : "unblocked", from_main[1] ? "blocked" : "unblocked");
}

/* Arguments name the sections to run (default: all, in this order). */
static const struct {
    const char *name;
    void (*run)(void);
} sections[] = {
    {"process", process_signals_avoid_blocking_threads},
    {"directed", thread_directed_signals_run_in_their_target},
    {"pending", thread_directed_signal_pends_in_its_thread},
    {"children", children_inherit_their_threads_mask},
};
#define SECTIONS (int)(sizeof sections / sizeof sections[0])

int main(int argc, char **argv) {
    program_start(30);
    for (int a = 1; a < argc; a++) {
        int known = 0;
        for (int i = 0; i < SECTIONS; i++) known |= strcmp(argv[a], sections[i].name) == 0;
        if (!known) {
            printf("FAIL unknown section %s\n", argv[a]);
            return 2;
        }
    }
    sigset_t none;
    sigemptyset(&none);
    CHECK_RC(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);  /* whatever the parent left blocked */
    for (int i = 0; i < SECTIONS; i++) {
        int wanted = argc == 1;
        for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], sections[i].name) == 0;
        if (wanted) sections[i].run();
    }
    return program_end("thread_sigmask");
}
