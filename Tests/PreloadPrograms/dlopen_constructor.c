/* dlopen_constructor.c — dlopen holds the dynamic loader's lock while it
 * runs a library's constructors, so a second thread's dlopen of the same
 * library waits until they have run and then finds it ready. argv[1] is
 * dlopen_constructor_module.c's library, whose constructor runs 200 ms.
 *
 * Under green run a long-running thread is preempted, but not inside the
 * loader: the constructor's code belongs to an object the loader has not
 * finished (and glibc's recursive loader lock, owned by the hub's OS
 * thread, would let another fiber thread of that hub straight in). */
#include "check.h"
#include <dlfcn.h>

static const char *path;
static int seen_ready = -1;

static void *first(void *arg) {
    (void)arg;
    CHECK(dlopen(path, RTLD_NOW) != NULL);
    return NULL;
}

static void *second(void *arg) {
    (void)arg;
    sleep_ms(30); /* the first is inside the constructor by now */
    void *lib = dlopen(path, RTLD_NOW);
    CHECK(lib != NULL);
    int (*module_ready)(void) = lib ? (int (*)(void))dlsym(lib, "module_ready") : NULL;
    CHECK(module_ready != NULL);
    seen_ready = module_ready ? module_ready() : -1;
    return NULL;
}

int main(int argc, char **argv) {
    program_start(30);
    if (argc < 2) return 2;
    path = argv[1];
    pthread_t a, b;
    CHECK_RC(pthread_create(&b, NULL, second, NULL), 0);
    CHECK_RC(pthread_create(&a, NULL, first, NULL), 0);
    CHECK_RC(pthread_join(a, NULL), 0);
    CHECK_RC(pthread_join(b, NULL), 0);
    CHECK(seen_ready == 1);
    printf("dlopen during another thread's dlopen: the library's constructor had run: %s\n",
           seen_ready == 1 ? "yes" : "no");
    return program_end("dlopen_constructor");
}
