// real.c — libc's own pthread functions, found with dlsym(RTLD_NEXT, …).
#include "preload.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PRELOAD_DEFINE_REAL(ret, name, args) ret(*preload_real_##name) args;
PRELOAD_REAL_FUNCTIONS(PRELOAD_DEFINE_REAL)
#undef PRELOAD_DEFINE_REAL

void preload_resolve(void) {
    // Idempotent and race-free enough: every thread stores the same pointers.
#define PRELOAD_RESOLVE(ret, name, args) \
    if (!preload_real_##name) preload_real_##name = (ret(*) args)dlsym(RTLD_NEXT, #name);
    PRELOAD_REAL_FUNCTIONS(PRELOAD_RESOLVE)
#undef PRELOAD_RESOLVE
    if (!preload_real_pthread_create || !preload_real_pthread_join) {
        static const char msg[] = "green: cannot find libc's pthread functions with dlsym(RTLD_NEXT)\n";
        long unused = GREEN_SYSCALL(SYS_write, 2, msg, sizeof msg - 1);
        (void)unused;
        abort();
    }
}
