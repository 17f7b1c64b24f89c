/* thread_comm.c — a thread's name in /proc (its comm) is the program's
 * unless the program names it, and a child forked from a thread takes that
 * name: under `green run` a fiber thread reads the comm of the hub thread it
 * runs on, which must then be the program's too, not the library's.
 * pthread_getname_np says the same, and a thread made by a named thread
 * starts with its creator's name. prctl(PR_SET_NAME) renames the calling
 * thread alone: its PR_GET_NAME and pthread_getname_np say the new name,
 * another thread's comm does not change, and bad pointers get EFAULT. */
#include "check.h"
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static char program_name[32];

static void read_comm(const char *path, char out[32]) {
    memset(out, 0, 32);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(out, 32, f)) out[0] = 0;
        fclose(f);
    }
    out[strcspn(out, "\n")] = 0;
}

static int same_as_program(const char *path) {
    char comm[32];
    read_comm(path, comm);
    if (strcmp(comm, program_name) != 0) printf("%s reads \"%s\"\n", path, comm);
    return strcmp(comm, program_name) == 0;
}

static void *thread_body(void *arg) {
    (void)arg;
    int ok = same_as_program("/proc/thread-self/comm");
    char name[32] = {0};
    if (pthread_getname_np(pthread_self(), name, sizeof name) != 0 || strcmp(name, program_name) != 0) {
        printf("pthread_getname_np says \"%s\"\n", name);
        ok = 0;
    }
    pid_t p = fork();
    if (p == 0) _exit(same_as_program("/proc/self/comm") ? 0 : 1);
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) ok = 0;
    return (void *)(intptr_t)ok;
}

static volatile int named;

static void *own_name(void *arg) {
    char *out = arg;
    if (pthread_getname_np(pthread_self(), out, 32) != 0) out[0] = 0;
    return NULL;
}

/* Waits until main has named it, then makes a thread of its own. */
static void *named_creator(void *arg) {
    while (!named) usleep(1000);
    pthread_t t;
    if (pthread_create(&t, NULL, own_name, arg) == 0) pthread_join(t, NULL);
    return NULL;
}

static volatile int renamed, checked;

/* Renames itself with prctl while `bystander` runs (on one hub: the same
 * OS thread), then reads its name back both ways. */
static void *prctl_renamer(void *arg) {
    char *out = arg; /* "<PR_GET_NAME>|<pthread_getname_np>" */
    if (prctl(PR_SET_NAME, "prctl-name-too-long-for-comm") != 0) strcpy(out, "PR_SET_NAME failed");
    renamed = 1;
    while (!checked) usleep(1000);
    char got[16] = {0}, via_pthread[32] = {0};
    if (prctl(PR_GET_NAME, got) != 0) strcpy(got, "failed");
    if (pthread_getname_np(pthread_self(), via_pthread, sizeof via_pthread) != 0) strcpy(via_pthread, "failed");
    if (!out[0]) snprintf(out, 64, "%s|%s", got, via_pthread);
    return NULL;
}

static void *bystander(void *arg) {
    while (!renamed) usleep(1000);
    intptr_t ok = same_as_program("/proc/thread-self/comm");
    char name[32] = {0};
    if (pthread_getname_np(pthread_self(), name, sizeof name) != 0 || strcmp(name, program_name) != 0) ok = 0;
    checked = 1;
    (void)arg;
    return (void *)ok;
}

/* A name at the very end of a page, and the pointers the kernel refuses. */
static void *prctl_edges(void *arg) {
    char *out = arg;
    char *pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) return NULL;
    mprotect(pages + 4096, 4096, PROT_NONE);
    memcpy(pages + 4096 - 3, "ab", 3); /* "ab\0" ends the readable page */
    int at_end = prctl(PR_SET_NAME, pages + 4096 - 3);
    char got[16] = {0};
    prctl(PR_GET_NAME, got);
    memset(pages + 4096 - 4, 'x', 4); /* no NUL before the unreadable page */
    errno = 0;
    int unterminated = prctl(PR_SET_NAME, pages + 4096 - 4), e1 = errno;
    errno = 0;
    int null_set = prctl(PR_SET_NAME, NULL), e2 = errno;
    errno = 0;
    int null_get = prctl(PR_GET_NAME, NULL), e3 = errno;
    errno = 0;
    int unreadable_get = prctl(PR_GET_NAME, pages + 4096), e4 = errno;
    char after[16] = {0};
    prctl(PR_GET_NAME, after);
    snprintf(out, 160, "end of page: %d \"%s\"; unterminated: %d %s; NULL set: %d %s; NULL get: %d %s; "
             "unwritable get: %d %s; name after: \"%s\"", at_end, got, unterminated, strerror(e1), null_set,
             strerror(e2), null_get, strerror(e3), unreadable_get, strerror(e4), after);
    munmap(pages, 8192);
    return NULL;
}

static int comm_is(const char *path, const char *want) {
    char comm[32];
    read_comm(path, comm);
    if (strcmp(comm, want) != 0) printf("%s reads \"%s\", not \"%s\"\n", path, comm, want);
    return strcmp(comm, want) == 0;
}

static void *child_thread(void *arg) {
    (void)arg;
    char name[32] = {0};
    pthread_getname_np(pthread_self(), name, sizeof name);
    return (void *)(intptr_t)(strcmp(name, "forker") == 0 && comm_is("/proc/thread-self/comm", "forker"));
}

/* Names itself, then forks: the child is named after it, and so are the
 * threads the child makes. */
static void *named_forker(void *arg) {
    (void)arg;
    if (pthread_setname_np(pthread_self(), "forker") != 0) return NULL;
    pid_t p = fork();
    if (p == 0) {
        int ok = comm_is("/proc/self/comm", "forker");
        for (int i = 0; i < 4; i++) { /* under two hubs the child starts its second hub */
            pthread_t t;
            void *r = NULL;
            if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &r) != 0 || !r) ok = 0;
        }
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    return (void *)(intptr_t)(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
    program_start(30);
    read_comm("/proc/self/comm", program_name);
    int all = 1;
    for (int round = 0; round < 4; round++) { /* on two hubs some run on hub 1 */
        pthread_t t[4];
        for (int i = 0; i < 4; i++) CHECK_RC(pthread_create(&t[i], NULL, thread_body, NULL), 0);
        for (int i = 0; i < 4; i++) {
            void *r = NULL;
            CHECK_RC(pthread_join(t[i], &r), 0);
            all &= r != NULL;
        }
    }
    printf("threads and the children they fork read the program's name as their comm: %s\n", all ? "yes" : "no");
    char inherited[32] = {0};
    pthread_t creator;
    CHECK_RC(pthread_create(&creator, NULL, named_creator, inherited), 0);
    CHECK_RC(pthread_setname_np(creator, "worker"), 0);
    named = 1;
    CHECK_RC(pthread_join(creator, NULL), 0);
    printf("a thread made by a thread named \"worker\" is named \"%s\"\n", inherited);

    pthread_t forker;
    void *forked_ok = NULL;
    CHECK_RC(pthread_create(&forker, NULL, named_forker, NULL), 0);
    CHECK_RC(pthread_join(forker, &forked_ok), 0);
    printf("a child forked by a thread named \"forker\" and its threads are named \"forker\": %s\n",
           forked_ok ? "yes" : "no");

    char names[64] = {0};
    pthread_t renamer, other;
    void *other_ok = NULL;
    CHECK_RC(pthread_create(&other, NULL, bystander, NULL), 0);
    CHECK_RC(pthread_create(&renamer, NULL, prctl_renamer, names), 0);
    CHECK_RC(pthread_join(renamer, NULL), 0);
    CHECK_RC(pthread_join(other, &other_ok), 0);
    printf("prctl(PR_SET_NAME) in a thread: PR_GET_NAME|getname say \"%s\"\n", names);
    printf("another thread still reads the program's name: %s\n", other_ok ? "yes" : "no");
    char edges[160] = {0};
    pthread_t edger;
    CHECK_RC(pthread_create(&edger, NULL, prctl_edges, edges), 0);
    CHECK_RC(pthread_join(edger, NULL), 0);
    printf("prctl names, %s\n", edges);
    return program_end("thread_comm");
}
