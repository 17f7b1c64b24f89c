// dispatch_sync.c — DispatchQueue.sync on a fiber. libdispatch runs a sync
// block on the calling thread and marks the queue as owned by that thread's
// tid while it runs. Every fiber of a hub shares that tid: a block that parks
// (I/O, a lock) leaves the queue "owned by the current thread", and the next
// fiber of the hub to sync onto it is taken for a deadlock and crashes the
// process ("dispatch_sync called on queue already owned by current thread").
// So while one fiber of a thread is inside a sync call, a sync from another
// fiber of that thread becomes what it means: its block runs on the queue's
// own worker thread and the fiber parks until it is done. The first one, and
// the syncs nested in it, run inline as natively (no worker thread for the
// common case; a block's own nested syncs stay on its fiber). Off a fiber, libdispatch's own function runs unchanged, and so it
// does under `green run`, whose fiber threads each have a tid of their own.
#include "../sync/sync.h"
#include <limits.h>

typedef void *dispatch_queue_t; // libdispatch's opaque queue
typedef void (*dispatch_function_t)(void *);
typedef void (*dispatch_call_fn)(dispatch_queue_t, void *, dispatch_function_t);

/// The start of a block literal (the blocks ABI): enough to call it.
struct block_literal {
    void *isa;
    int flags;
    int reserved;
    void (*invoke)(void *block, ...);
};

/// libdispatch's own functions (found on first use: shim_next_function).
static void *_Atomic real_sync_f, *_Atomic real_barrier_sync_f, *_Atomic real_sync, *_Atomic real_barrier_sync;
static void *_Atomic real_async_f, *_Atomic real_barrier_async_f;
#define NEXT(name) shim_next_function(&real_##name, "dispatch_" #name)

/// One sync call in flight: on the waiting fiber's stack.
typedef struct sync_job {
    void *context;
    dispatch_function_t work;
    uint32_t done; ///< futex word: 1 once `work` returned
} sync_job;

// The job reaches the worker through libdispatch, which is not instrumented:
// `work` is published with release and read with acquire, so that the
// ordering is one ThreadSanitizer sees as well as the hardware.
static void run_job(void *arg) {
    sync_job *job = arg;
    dispatch_function_t work = __atomic_load_n(&job->work, __ATOMIC_ACQUIRE);
    work(job->context);
    __atomic_store_n(&job->done, 1, __ATOMIC_RELEASE);
    gfutex_wake(&job->done, 1, 0);
}

/// Run `work` on `queue` with `submit` (async or barrier async) and park until it is done.
static void run_and_park(dispatch_call_fn submit, dispatch_queue_t queue, void *context, dispatch_function_t work) {
    sync_job job = {.context = context, .done = 0};
    __atomic_store_n(&job.work, work, __ATOMIC_RELEASE);
    submit(queue, &job, run_job);
    while (!__atomic_load_n(&job.done, __ATOMIC_ACQUIRE))
        gfutex_wait(&job.done, 0, CLOCK_MONOTONIC, NULL, 0, "dispatch_sync");
}

static void invoke_block(void *block) { ((struct block_literal *)block)->invoke(block); }

/// A fiber that shares its thread's tid with other fibers (a linked program's).
static inline int on_shared_tid_fiber(void) { return green_on_fiber() && !shim_pthreads; }

/// The fiber of this thread inside an inline sync call (waiting for the
/// queue or running the block), and how deep its syncs are nested.
static __thread green_fiber *inline_sync_fiber __attribute__((tls_model("initial-exec")));
static __thread unsigned inline_sync_depth __attribute__((tls_model("initial-exec")));

/// Whether this fiber's sync runs inline (then it is counted until `leave_inline`).
static inline int enter_inline(void) {
    green_fiber *me = green_parkable_fiber();
    if (inline_sync_depth && inline_sync_fiber != me) return 0;
    inline_sync_fiber = me;
    inline_sync_depth++;
    return 1;
}
static inline void leave_inline(void) {
    if (--inline_sync_depth == 0) inline_sync_fiber = NULL;
}

/// A fiber's sync call while another fiber of its thread is inside one runs
/// its work on the queue's worker, submitted with `submit`, and parks until
/// it is done (returns 1). Otherwise the caller makes libdispatch's own call
/// (returns 0), then calls leave_inline() if `*counted`.
static int parked(void *_Atomic *submit_slot, const char *submit_name, dispatch_queue_t queue, void *context,
                  dispatch_function_t work, int *counted) {
    *counted = 0;
    if (!on_shared_tid_fiber()) return 0;
    if (enter_inline()) {
        *counted = 1;
        return 0;
    }
    run_and_park((dispatch_call_fn)shim_next_function(submit_slot, submit_name), queue, context, work);
    return 1;
}

GREEN_EXPORT void dispatch_sync_f(dispatch_queue_t queue, void *context, dispatch_function_t work) {
    int counted;
    if (parked(&real_async_f, "dispatch_async_f", queue, context, work, &counted)) return;
    ((dispatch_call_fn)NEXT(sync_f))(queue, context, work);
    if (counted) leave_inline();
}

GREEN_EXPORT void dispatch_barrier_sync_f(dispatch_queue_t queue, void *context, dispatch_function_t work) {
    int counted;
    if (parked(&real_barrier_async_f, "dispatch_barrier_async_f", queue, context, work, &counted)) return;
    ((dispatch_call_fn)NEXT(barrier_sync_f))(queue, context, work);
    if (counted) leave_inline();
}

// The block forms. Inline, libdispatch's own (it also honours
// dispatch_block_create's flags); parked, the block stays on the fiber's
// stack until the call returns, and runs as a barrier: a block made by
// dispatch_block_create may carry that flag, which only libdispatch's own
// call reads (on a serial queue it changes nothing).
typedef void (*dispatch_block_call_fn)(dispatch_queue_t, void *);

GREEN_EXPORT void dispatch_sync(dispatch_queue_t queue, void *block) {
    int counted;
    if (parked(&real_barrier_async_f, "dispatch_barrier_async_f", queue, block, invoke_block, &counted)) return;
    ((dispatch_block_call_fn)NEXT(sync))(queue, block);
    if (counted) leave_inline();
}

GREEN_EXPORT void dispatch_barrier_sync(dispatch_queue_t queue, void *block) {
    int counted;
    if (parked(&real_barrier_async_f, "dispatch_barrier_async_f", queue, block, invoke_block, &counted)) return;
    ((dispatch_block_call_fn)NEXT(barrier_sync))(queue, block);
    if (counted) leave_inline();
}
