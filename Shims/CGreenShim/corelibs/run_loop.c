// run_loop.c — RunLoop/CFRunLoop on fibers. Foundation keeps one run loop per
// thread, and every fiber of a hub runs on the same thread: two fibers inside
// it at once would share its wait set and its one timer, and the first to
// leave re-arms the timer for itself, so the other waits past its own limit,
// maybe for ever (Process.waitUntilExit on several fibers hung that way).
// So fibers of a hub take turns: one runs the loop while the others park
// until it returns (each no longer than the time it gave the call), and a
// fiber that had its turn lets a waiting one go first next time. A fiber
// that runs the loop again from inside a callout keeps its turn. Off a
// fiber, and under `green run` (each fiber thread has its own TLS, so its
// own run loop), Foundation's own functions run unchanged.
#include "../sync/sync.h"
#include <time.h>

typedef int32_t (*run_in_mode_fn)(const void *mode, double seconds, unsigned char return_after_source_handled);
typedef void (*run_fn)(void);

/// Foundation's own functions (found on first use: shim_next_function).
static void *_Atomic real_run_in_mode, *_Atomic real_run;

/// The turn of this thread's run loop: a recursive mutex, which parks a fiber
/// and is owned per fiber (sync/mutex.c).
static __thread pthread_mutex_t turn __attribute__((tls_model("initial-exec"))) =
    PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

/// A fiber that shares its thread's run loop with other fibers (a linked
/// program's; under `green run` each fiber thread has a run loop of its own).
static inline int on_shared_thread_fiber(void) { return green_on_fiber() && !shim_pthreads; }

enum { RUN_TIMED_OUT = 3 }; // kCFRunLoopRunTimedOut

/// Wait for the turn at most `seconds` (what the caller gave the whole call).
static int take_turn(double seconds) {
    if (seconds <= 0) return pthread_mutex_trylock(&turn) == 0;
    if (seconds > 1e9) return pthread_mutex_lock(&turn) == 0; // distantFuture and beyond: no deadline
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (int64_t)((seconds - (double)(int64_t)seconds) * 1e9);
    until.tv_sec += (time_t)seconds + ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    return pthread_mutex_timedlock(&turn, &until) == 0;
}

/// Give the turn back; a fiber waiting for it (now ready) runs before this one can ask again.
static void end_turn(void) {
    pthread_mutex_unlock(&turn);
    shim_yield_keeping_interrupts();
}

GREEN_EXPORT int32_t CFRunLoopRunInMode(const void *mode, double seconds, unsigned char return_after_source_handled) {
    run_in_mode_fn run = (run_in_mode_fn)shim_next_function(&real_run_in_mode, "CFRunLoopRunInMode");
    if (!on_shared_thread_fiber()) return run(mode, seconds, return_after_source_handled);
    if (!take_turn(seconds)) return RUN_TIMED_OUT;
    int32_t result = run(mode, seconds, return_after_source_handled);
    end_turn();
    return result;
}

GREEN_EXPORT void CFRunLoopRun(void) {
    run_fn run = (run_fn)shim_next_function(&real_run, "CFRunLoopRun");
    if (!on_shared_thread_fiber()) {
        run();
        return;
    }
    pthread_mutex_lock(&turn);
    run();
    end_turn();
}
