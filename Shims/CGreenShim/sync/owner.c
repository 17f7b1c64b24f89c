// owner.c — who holds a lock. glibc writes the owner's kernel tid into a
// mutex or rwlock, but every fiber of a hub runs on one OS thread and so
// shares its tid: a recursive or error-checking mutex must tell the fibers
// apart. A fiber's owner id comes from the core (above any kernel tid); the
// preload library names its fiber threads itself (the hooks).
#include "sync.h"
#include <sys/syscall.h>
#include <unistd.h>

const shim_pthread_hooks *_Atomic shim_pthreads;

__thread int shim_cached_tid __attribute__((tls_model("initial-exec")));

static void forget_tid(void) { shim_cached_tid = 0; }
__attribute__((constructor)) static void forget_tid_in_fork_children(void) { pthread_atfork(NULL, NULL, forget_tid); }

pid_t shim_kernel_tid(void) {
    if (!shim_cached_tid) shim_cached_tid = (int)GREEN_SYSCALL(SYS_gettid);
    return shim_cached_tid;
}

int shim_thread_owner_id_slow(void) {
    const shim_pthread_hooks *h = shim_pthreads;
    return h ? h->self_id() : shim_kernel_tid();
}

int shim_owner_id_slow(void) {
    const shim_pthread_hooks *h = shim_pthreads;
    if (h) return h->self_id();
    if (green_on_fiber()) return green_fiber_owner_id(green_parkable_fiber());
    return shim_kernel_tid();
}
