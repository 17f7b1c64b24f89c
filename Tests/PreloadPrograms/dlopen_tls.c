/* dlopen_tls.c — a library loaded with dlopen after the threads exist has
 * TLS of its own in each of them, starting from its initial values: its
 * dynamic TLS (allocated on first use) and its static TLS (initial-exec,
 * written into every thread when the library is loaded, the loading thread
 * included, which uses it at once). argv[1] and
 * argv[2] are the libraries (dlopen_tls_module.c, dlopen_static_tls_module.c). */
#include "check.h"
#include <dlfcn.h>

#define THREADS 6
#define ROUNDS 20

static int (*bump_dynamic)(void), (*bump_static)(void);
static void *(*dynamic_address)(void), *(*static_address)(void);
static int loaded;
static void *addresses[THREADS][2];

static void *worker(void *arg) {
    int i = (int)(intptr_t)arg;
    while (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) sleep_ms(1); /* exists before the dlopen */
    addresses[i][0] = dynamic_address();
    addresses[i][1] = static_address();
    int dynamic_ok = 1, static_ok = 1;
    for (int r = 1; r <= ROUNDS; r++) {
        if (bump_dynamic() != 100 + r) dynamic_ok = 0;
        if (bump_static() != 7 + r) static_ok = 0;
        if (r % 4 == 0) sleep_ms(1); /* the others run meanwhile */
    }
    CHECK(dynamic_ok);
    CHECK(static_ok);
    return NULL;
}

/* Loads the libraries on a thread of its own (argv), and uses them at once:
 * its own static TLS is initialised when dlopen returns, as every thread's. */
static void *loader(void *arg) {
    char **argv = arg;
    void *dynamic = dlopen(argv[1], RTLD_NOW), *fixed = dlopen(argv[2], RTLD_NOW);
    if (!dynamic || !fixed) {
        printf("FAIL dlopen: %s\n", dlerror());
        exit(1);
    }
    bump_dynamic = (int (*)(void))dlsym(dynamic, "bump_dynamic");
    bump_static = (int (*)(void))dlsym(fixed, "bump_static");
    dynamic_address = (void *(*)(void))dlsym(dynamic, "dynamic_address");
    static_address = (void *(*)(void))dlsym(fixed, "static_address");
    CHECK(bump_dynamic && bump_static && dynamic_address && static_address);
    CHECK(bump_dynamic() == 101 && bump_static() == 8); /* the loader's own, before it ever waits */
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
    return NULL;
}

int main(int argc, char **argv) {
    program_start(30);
    if (argc < 3) return 2;
    pthread_t t[THREADS], load;
    for (int i = 0; i < THREADS; i++) CHECK_RC(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    sleep_ms(20);
    CHECK_RC(pthread_create(&load, NULL, loader, argv), 0);
    CHECK_RC(pthread_join(load, NULL), 0);
    CHECK(bump_dynamic() == 101 && bump_static() == 8); /* main's own */
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    int distinct = 1;
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < i; j++)
            if (addresses[i][0] == addresses[j][0] || addresses[i][1] == addresses[j][1]) distinct = 0;
    CHECK(distinct);
    printf("dlopen after the threads: dynamic and static TLS per thread, from their initial values\n");
    return check_failures ? 1 : 0;
}
