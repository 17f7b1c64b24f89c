// overflow.c — report a fiber stack overflow by name instead of a bare
// segfault. A SIGSEGV handler running on an alternate signal stack checks
// whether the faulting address lies in the running fiber's guard region; if
// so it prints "fiber stack overflow in <name>" and lets the default action
// kill the process. Any other fault goes to the handler that was there before.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

#define ALTSTACK_SIZE (64u * 1024u)

static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void write_str(const char *s) {
    ssize_t unused = write(2, s, strlen(s));
    (void)unused;
}

/// Hand the signal to the handler that was there before. A fault repeats when
/// the handler returns, so the default action only needs putting back; a
/// SIGSEGV sent with kill/raise (si_code <= 0) does not, so it is raised again.
static void forward(int sig, siginfo_t *info, void *uc) {
    int sent = info && info->si_code <= 0;
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
        previous.sa_sigaction(sig, info, uc);
    } else if (previous.sa_handler == SIG_IGN) {
        if (!sent) signal(SIGSEGV, SIG_DFL); // a fault cannot be ignored: the kernel would kill us too
    } else if (previous.sa_handler == SIG_DFL) {
        signal(SIGSEGV, SIG_DFL);
        if (sent) raise(SIGSEGV); // delivered at once: the handler runs with SA_NODEFER
    } else {
        previous.sa_handler(sig);
    }
}

static void on_segv(int sig, siginfo_t *info, void *uc) {
    green_sched *s = green_tls_sched;
    green_fiber *f = s ? s->run.current : NULL;
    char *addr = info ? (char *)info->si_addr : NULL;
    int fault = info && info->si_code > 0;
    if (fault && f && f->stack.guard && addr >= f->stack.guard && addr < f->stack.lo) {
        write_str("green: fiber stack overflow in ");
        write_str(f->name[0] ? f->name : "<unnamed fiber>");
        write_str(" (stack size: raise it with the fiber's stackSize option)\n");
        signal(SIGSEGV, SIG_DFL);
        return; // the faulting access repeats and the default action ends the process
    }
    forward(sig, info, uc);
}

static void install_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    green_libc_sigaction(SIGSEGV, &sa, &previous);
}

void green_overflow_install_for_thread(void) {
    if (getenv("GREEN_NO_OVERFLOW_HANDLER")) return;
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
        stack_t ss;
        ss.ss_sp = malloc(ALTSTACK_SIZE);
        ss.ss_size = ALTSTACK_SIZE;
        ss.ss_flags = 0;
        if (ss.ss_sp && sigaltstack(&ss, NULL) != 0) free(ss.ss_sp);
    }
    pthread_once(&install_once, install_handler);
}
