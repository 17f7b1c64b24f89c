// signals.c — the program's signal handlers, wrapped. sigaction still
// reports the program's own handler; the wrapper around it does what a
// threaded program gets from the kernel:
//
// - The handler runs on a thread that does not block the signal (sigmask.c
//   picks it): that thread's TLS is loaded around the handler, so what the
//   handler reads and writes (errno, thread-locals, pthread_self) is that
//   thread's. A signal no thread takes now stays pending (sigmask.c).
// - A handler installed without SA_RESTART makes the blocking call it
//   interrupted fail with EINTR — the usual way a server's accept loop
//   notices SIGTERM. Here the thread is usually waiting in the hub's epoll,
//   not in the program's call, so after the handler the fiber thread it ran
//   for is woken from its blocking call with EINTR. (Off a fiber, e.g. in a
//   linked Swift program, every fiber's blocking call is.)
#include "preload.h"
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

static struct sigaction programs[NSIG]; // what the program installed, as it sees it
static volatile sig_atomic_t wrapped[NSIG];

static void trampoline(int sig, siginfo_t *info, void *context) {
    struct sigaction *a = &programs[sig];
    int interrupts = !(a->sa_flags & SA_RESTART);
    if (a->sa_flags & SA_RESETHAND) wrapped[sig] = 0; // the kernel has put SIG_DFL back
    green_sched *s = green_sched_current();
    gsig *target = NULL;
    if (s && preload_fiber_mode && gsig_main()) {
        target = gsig_pick_target(sig, info);
        if (!target) return; // pending for the thread it was sent to, or for the process
    }
    int generation = gsig_applied_generation();
    void *before = NULL;
    if (target) before = green_thread_pointer_swap(target->tp ? target->tp : green_sched_native_thread_pointer(s));
    if (a->sa_flags & SA_SIGINFO) a->sa_sigaction(sig, info, context);
    else a->sa_handler(sig);
    if (target) {
        green_thread_pointer_swap(before);
        target->handled++;
        if ((interrupts || target->suspended) && target->fiber) green_fiber_interrupt_syscall(target->fiber);
        // The kernel puts back, on return, the mask it saved at delivery: if a
        // thread's mask changed meanwhile, the one the threads want now.
        if (generation != gsig_applied_generation() && context)
            gsig_applied_mask(&((ucontext_t *)context)->uc_sigmask);
    } else if (interrupts && s) {
        green_sched_interrupt_syscalls(s);
    }
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;

GREEN_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    if (!preload_fiber_mode || sig <= 0 || sig >= NSIG) return real_sigaction(sig, act, old);
    green_fair_turn(); // a thread that changes handlers in a loop still lets the others run
    struct sigaction before = programs[sig];
    int was_wrapped = wrapped[sig];
    int r;
    if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
        struct sigaction mine = *act;
        mine.sa_sigaction = trampoline;
        mine.sa_flags |= SA_SIGINFO;
        programs[sig] = *act; // before the switch: the handler may run at once
        r = real_sigaction(sig, &mine, old);
        if (r == 0) wrapped[sig] = 1;
        else programs[sig] = before;
    } else {
        r = real_sigaction(sig, act, old);
        if (r == 0 && act) wrapped[sig] = 0;
    }
    if (r == 0 && old && was_wrapped) *old = before;
    return r;
}

/// signal() has BSD semantics in glibc: restart, handler kept, signal blocked meanwhile.
GREEN_EXPORT sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (sig > 0 && sig < NSIG) sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, &old) != 0) return SIG_ERR;
    return old.sa_handler;
}
