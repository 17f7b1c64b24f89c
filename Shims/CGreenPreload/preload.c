// preload.c — start-up of the LD_PRELOAD library: read the settings, make the
// main thread's original context a fiber on a hub, install the hub ABI with
// this library's thread pool, and the optional fiber dump and blocking monitor.
#include "preload.h"
#include "include/green_preload.h"
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int preload_fiber_mode;
size_t preload_default_stack;
int preload_debug;

int green_preload_fiber_mode(void) { return preload_fiber_mode; }

void preload_log(const char *fmt, ...) {
    if (!preload_debug) return;
    va_list ap;
    va_start(ap, fmt);
    green_vlog(fmt, ap);
    va_end(ap);
}

/// "65536", "64k", "8m", "1g" → bytes; 0 if malformed.
static size_t parse_size(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s) return 0;
    switch (tolower((unsigned char)*end)) {
    case 'k': v <<= 10; end++; break;
    case 'm': v <<= 20; end++; break;
    case 'g': v <<= 30; end++; break;
    }
    return *end ? 0 : (size_t)v;
}

static int signal_number(const char *name) {
    if (isdigit((unsigned char)*name)) return atoi(name);
    if (strncmp(name, "SIG", 3) == 0) name += 3;
    if (strcmp(name, "USR1") == 0) return SIGUSR1;
    if (strcmp(name, "USR2") == 0) return SIGUSR2;
    if (strcmp(name, "HUP") == 0) return SIGHUP;
    if (strcmp(name, "QUIT") == 0) return SIGQUIT;
    return 0;
}

static void async_cancel_point(void) { gcancel_async_point(); }

/// What the shim's locks and waits ask of this library: fiber threads' ids
/// and their cancellation.
static const shim_pthread_hooks pthread_hooks = {
    .self_id = preload_self_id,
    .kernel_tid = preload_kernel_tid,
    .cancel_point_enter = gcancel_point_enter,
    .cancel_point_leave = gcancel_point_leave,
    .cancel_async_point = async_cancel_point,
    .testcancel = gcancel_testcancel,
    .swap_mask = gsig_swap_mask,
    .handlers_run = gsig_handlers_run,
    .robust_head = thread_block_robust_head,
};

static void on_notify(void *unused) {
    (void)unused;
    gcancel_deliver_remote();
    gsig_reload_if_asked();
}

/// A fork child has only the forking thread: only the forking fiber goes on.
static void after_fork_in_child(void) {
    hubs_after_fork_in_child();
    handoff_after_fork_in_child();
    gfutex_after_fork_in_child();
    preload_threadpool_after_fork_in_child();
    gthread_after_fork_in_child();
}

void preload_hub_setup(green_sched *s) {
    // A program waiting for a signal or a native thread is not deadlocked:
    // keep the loop waiting, as the program would natively.
    green_sched_retain_external(s);
    green_sched_set_owner(s, NULL, on_notify, NULL);
    preload_signals_start(s);
}

static void start_main_hub(void) {
    green_exclusivity_off(); // the program is not Swift (a Swift program links Green instead)
    // The monitor's thread first: with no hub yet, pthread_create makes it an
    // OS thread. It prints the fiber dump itself, so the dump comes out even
    // when the hub never runs again or its thread blocks the signal.
    const char *dump = getenv("GREEN_DUMP_SIGNAL");
    if (dump && *dump) {
        int sig = signal_number(dump);
        if (sig > 0 && green_dump_on_signal(sig) == 0) preload_log("fiber dump on signal %d", sig);
        else preload_log("GREEN_DUMP_SIGNAL=%s: not a signal this library knows", dump);
    }
    const char *monitor = getenv("GREEN_MONITOR_MS");
    if (monitor && atoi(monitor) > 0) green_monitor_start((int64_t)atoi(monitor) * 1000000);
    green_sched *s = green_sched_create();
    if (!s) {
        preload_log("cannot start the hub: pthreads stay native");
        preload_fiber_mode = 0;
        return;
    }
    preload_hub_setup(s);
    hubs_init(s);
    green_fiber_set_name(green_sched_root(s), "main");
    gthread_note_hub_thread();
    green_hub_abi_install(green_hub_abi_make(preload_run_blocking));
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

void preload_init(void) {
    static int state; // 0 new, 1 starting, 2 ready (atomic builtins)
    static __thread int initializing __attribute__((tls_model("initial-exec"))); // this thread is inside: a call from the set-up itself
    if (initializing) return;
    int expected = 0;
    if (!__atomic_compare_exchange_n(&state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 2) GREEN_SYSCALL(SYS_sched_yield);
        return;
    }
    initializing = 1;
    preload_resolve();
    shim_pthreads = &pthread_hooks;
    const char *debug = getenv("GREEN_DEBUG");
    preload_debug = debug && *debug && strcmp(debug, "0") != 0;

    const char *mode = getenv("GREEN_THREADS");
    preload_fiber_mode = 1;
    if (mode && strcmp(mode, "native") == 0) preload_fiber_mode = 0;
    else if (mode && *mode && strcmp(mode, "fiber") != 0)
        preload_log("GREEN_THREADS=%s: expected fiber or native; using fiber", mode);

    pthread_attr_t attr;
    size_t native = 8u << 20;
    if (pthread_getattr_default_np(&attr) == 0) {
        pthread_attr_getstacksize(&attr, &native);
        pthread_attr_destroy(&attr);
    }
    preload_default_stack = native;
    const char *stack = getenv("GREEN_STACK_SIZE");
    if (stack && *stack) {
        size_t v = parse_size(stack);
        if (v >= 16384 && v <= GREEN_MAX_STACK_SIZE) preload_default_stack = v;
        else preload_log("GREEN_STACK_SIZE=%s: not a size between 16k and 1g; using %zu", stack, native);
    }
    if (preload_fiber_mode) {
        thread_block_init();
        start_main_hub();
        if (preload_fiber_mode) {
            gsig_init_main();
            thread_block_start();
        }
    }
    preload_log("%s threads, default stack %zu KiB", preload_fiber_mode ? "fiber" : "native",
                preload_default_stack >> 10);
    __atomic_store_n(&state, 2, __ATOMIC_RELEASE);
    initializing = 0;
}

__attribute__((constructor)) static void at_load(void) { preload_init(); }
