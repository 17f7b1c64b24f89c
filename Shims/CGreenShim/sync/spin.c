// spin.c — pthread spin locks. A fiber must not spin on a lock that another
// fiber of its own hub holds (that fiber cannot run meanwhile): it yields
// between tries. Threads spin as libc's do.
#include "sync.h"
#include <errno.h>

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

GREEN_EXPORT int pthread_spin_init(pthread_spinlock_t *l, int pshared) {
    (void)pshared;
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
    return 0;
}

GREEN_EXPORT int pthread_spin_destroy(pthread_spinlock_t *l) {
    (void)l;
    return 0;
}

GREEN_EXPORT int pthread_spin_trylock(pthread_spinlock_t *l) {
    int free_ = 0;
    return __atomic_compare_exchange_n(l, &free_, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED) ? 0 : EBUSY;
}

GREEN_EXPORT int pthread_spin_lock(pthread_spinlock_t *l) {
    while (pthread_spin_trylock(l) != 0) {
        if (green_on_fiber()) shim_yield_keeping_interrupts();
        else
            while (__atomic_load_n(l, __ATOMIC_RELAXED)) cpu_relax();
    }
    return 0;
}

GREEN_EXPORT int pthread_spin_unlock(pthread_spinlock_t *l) {
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
    return 0;
}
