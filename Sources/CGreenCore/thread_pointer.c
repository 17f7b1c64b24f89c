// thread_pointer.c — read and write the CPU's thread pointer, the register
// through which every TLS access of the running code goes (x86_64: the FS
// base; aarch64: TPIDR_EL0). A fiber that stands for a thread of the program
// (`green run`) has a thread pointer of its own, and the switch loads it.
#include "internal.h" // before <sys/auxv.h>: its <elf.h> defines EV_NONE, a name of libev's
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#include <asm/prctl.h>

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1) // the kernel lets user code run wrfsbase (Linux ≥ 5.9)
#endif

/// 1: wrfsbase (a few cycles); 0: the arch_prctl system call. Decided once,
/// before the first fiber with a thread pointer of its own exists.
static int use_wrfsbase = -1;

void green_tp_prepare(void) {
    if (use_wrfsbase < 0) use_wrfsbase = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0;
}

void green_tp_write(void *tp) {
    if (__builtin_expect(use_wrfsbase > 0, 1)) {
        __asm__ volatile("wrfsbase %0" : : "r"(tp) : "memory");
        return;
    }
    // A raw system call: the libc wrapper may be interposed, and sets errno
    // (a TLS access) while the thread pointer is half-way.
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_arch_prctl), "D"((long)ARCH_SET_FS), "S"(tp)
                     : "rcx", "r11", "memory");
    (void)ret; // cannot fail for a canonical user address
}

#elif defined(__aarch64__)

void green_tp_prepare(void) {}

void green_tp_write(void *tp) { __asm__ volatile("msr tpidr_el0, %0" : : "r"(tp) : "memory"); }

#else
#error "Green supports x86_64 and aarch64"
#endif

void *green_tp_read(void) { return __builtin_thread_pointer(); }

int green_tp_uses_syscall(void) {
#if defined(__x86_64__)
    green_tp_prepare();
    return use_wrfsbase == 0;
#else
    return 0;
#endif
}
