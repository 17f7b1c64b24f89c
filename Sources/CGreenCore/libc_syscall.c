// libc_syscall.c — libc's own syscall() and sigaction(), for the library's
// own use. `green run` interposes both, so that a program's futex waits,
// gettid or reads made through syscall() reach the shim and its signal
// handlers run on the right thread; the library's own calls and handlers
// (the stack-overflow report, the fiber dump) must not go through them.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
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

static int (*_Atomic libc_sigaction)(int, const struct sigaction *, struct sigaction *);

int green_libc_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    int (*fn)(int, const struct sigaction *, struct sigaction *) = libc_sigaction;
    if (__builtin_expect(fn == NULL, 0)) {
        fn = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
        if (!fn) fn = sigaction;
        libc_sigaction = fn;
    }
    return fn(sig, act, old);
}
