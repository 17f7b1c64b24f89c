// real.c — find libc's definitions of the interposed functions.
#include "real.h"
#include <dlfcn.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include "include/green_shim.h"
#include "green_hub_abi.h"

#define GREEN_DEFINE_REAL(ret, name, args) ret(*green_real_##name) args;
GREEN_REAL_FUNCTIONS(GREEN_DEFINE_REAL)
#undef GREEN_DEFINE_REAL

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void resolve_all(void) {
#define GREEN_RESOLVE(ret, name, args) \
    green_real_##name = (ret(*) args)dlsym(RTLD_NEXT, #name);
    GREEN_REAL_FUNCTIONS(GREEN_RESOLVE)
#undef GREEN_RESOLVE
    if (!green_real_read || !green_real_write || !green_real_close || !green_real_poll) {
        // Without these nothing works; say so instead of crashing later.
        static const char msg[] = "green: cannot find libc's functions with dlsym(RTLD_NEXT)\n";
        long unused = GREEN_SYSCALL(SYS_write, 2, msg, sizeof msg - 1);
        (void)unused;
        abort();
    }
    pthread_atfork(green_shim_fork_prepare, NULL, NULL);
}

void green_shim_resolve(void) { pthread_once(&once, resolve_all); }

// Resolve early so the fast path's check is always true.
__attribute__((constructor(101))) static void resolve_at_load(void) { green_shim_resolve(); }

void *shim_next_function(void *_Atomic *slot, const char *name) {
    void *fn = atomic_load_explicit(slot, memory_order_acquire);
    if (fn) return fn;
    fn = dlsym(RTLD_NEXT, name);
    if (!fn) {
        static const char msg[] = "green: an interposed framework call, but the framework's own function is not found\n";
        long unused = GREEN_SYSCALL(SYS_write, 2, msg, sizeof msg - 1);
        (void)unused;
        abort();
    }
    atomic_store_explicit(slot, fn, memory_order_release);
    return fn;
}

int green_shim_ready(void) {
    green_shim_resolve();
    return green_real_read != 0;
}
