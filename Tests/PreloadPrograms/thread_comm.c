/* thread_comm.c — a thread's name in /proc (its comm) is the program's
 * unless the program names it, and a child forked from a thread takes that
 * name: under `green run` a fiber thread reads the comm of the hub thread it
 * runs on, which must then be the program's too, not the library's.
 * pthread_getname_np says the same, and a thread made by a named thread
 * starts with its creator's name. */
#include "check.h"
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
    return program_end("thread_comm");
}
