// libc_syscall.c — libc's own syscall(), for the library's raw system calls.
// `green run` interposes syscall() so that a program's futex waits, gettid or
// reads made through it reach the shim; the library's own calls must not.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>
#include "internal.h"

static long (*_Atomic libc_syscall)(long, ...);

long (*green_libc_syscall(void))(long, ...) {
    long (*fn)(long, ...) = libc_syscall;
    if (__builtin_expect(fn == NULL, 0)) {
        fn = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall"); // the next definition after this object: libc's
        if (!fn) fn = syscall;                                 // nobody interposes it (a linked program)
        libc_syscall = fn;
    }
    return fn;
}
