/* dlopen_by_main.c — the main thread loads a library with static
 * (initial-exec) TLS and, without waiting for anything, hands it to another
 * thread, which uses it at once: that thread's TLS has the library's initial
 * values. argv[1] is dlopen_static_tls_module.c's library.
 *
 * Under green run with two hubs the other thread runs on another OS thread
 * while main spins: the copy of the library's TLS into every fiber thread is
 * made at main's dlsym (its own copy), not left to a switch that a hub other
 * than main's could make while the library is half loaded. */
#include "check.h"
#include <dlfcn.h>

static int (*bump_static)(void);
static int loaded, first = -1;

static void *user(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) sleep_ms(1);
    __atomic_store_n(&first, bump_static(), __ATOMIC_RELEASE);
    return NULL;
}

int main(int argc, char **argv) {
    program_start(30);
    if (argc < 2) return 2;
    pthread_t t;
    CHECK_RC(pthread_create(&t, NULL, user, NULL), 0);
    sleep_ms(20);
    void *lib = dlopen(argv[1], RTLD_NOW);
    CHECK(lib != NULL);
    bump_static = lib ? (int (*)(void))dlsym(lib, "bump_static") : NULL;
    CHECK(bump_static != NULL);
    if (!bump_static) return program_end("dlopen_by_main");
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&first, __ATOMIC_ACQUIRE) < 0) { /* no call: main keeps its hub */ }
    CHECK(first == 8);
    CHECK_RC(pthread_join(t, NULL), 0);
    printf("a library main loaded, used at once by another thread: its TLS from the initial value: %s\n",
           first == 8 ? "yes" : "no");
    return program_end("dlopen_by_main");
}
