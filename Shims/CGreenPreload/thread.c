// thread.c — pthreads as fibers: create, join, detach, exit, self, and the
// calls that take a pthread_t. A thread created on a fiber (the main thread
// included) becomes a fiber of the same hub; anywhere else (a native thread of
// some library, the thread pool) pthread_create stays libc's.
#include "preload.h"
#include "../CGreenShim/shim.h"
#include <stdarg.h>
#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

uint32_t gthread_live;
static int main_is_gone; // in a fork child made by a fiber thread: main did not come along
static int next_id;       // under the registry's lock; 0 until the first thread (start_ids_anywhere)
static int ids_wrapped;   // every id from the start on was given once: skip live threads' ids
static int threads_made;  // for the default names, "thread N"
static pthread_t hub_thread;             // the OS thread running every fiber thread (its own descriptor)
static pid_t hub_tid;                    // ...and its kernel tid

void gthread_note_hub_thread(void) {
    hub_thread = PREAL(pthread_self)(); // on the hub thread's own TLS (start-up, before any fiber thread)
    hub_tid = (pid_t)GREEN_SYSCALL(SYS_gettid);
}


// A thread's record and its stack (which may hold the record: glibc's
// layout) go when the thread has FINISHED (its fiber left the stack for
// good) and nobody will ask for it (DETACHED, or JOINED): the second of the
// two frees them.
enum { DETACHED = 1, FINISHED = 2, JOINING = 4, JOINED = 8 };

// ---- the live fiber threads, by id -----------------------------------------------

static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER; // libc's (PREAL): held for a few loads, never parked in
static gthread *live_head;
static volatile sig_atomic_t registry_changing; // a signal handler on the hub thread must not walk it now

void gthread_registry_lock(void) { REAL(pthread_mutex_lock)(&registry); }
void gthread_registry_unlock(void) { REAL(pthread_mutex_unlock)(&registry); }

gthread *gthread_by_id(pid_t id) {
    for (gthread *t = live_head; t; t = t->live_next)
        if (t->id == id) return t;
    return NULL;
}

/// Each process (a fork child too) starts its ids at a random place in the
/// range: a process-shared robust or PI mutex holds its owner's id, which
/// must not name a thread of another process too.
static void start_ids_anywhere(void) {
    uint32_t r = 0;
    if (GREEN_SYSCALL(SYS_getrandom, (long)&r, (long)sizeof r, (long)GRND_NONBLOCK) != (long)sizeof r)
        r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)green_now_ns();
    next_id = GTHREAD_FIRST_ID + (int)(r % (uint32_t)(GTHREAD_LAST_ID - GTHREAD_FIRST_ID + 1));
    ids_wrapped = 0;
}

/// A new thread's id: the next one, as the kernel gives tids, wrapping
/// within [GTHREAD_FIRST_ID, GTHREAD_LAST_ID] past the ids of live threads;
/// and its number, for its default name.
static pid_t take_id(int *number) {
    gthread_registry_lock();
    if (!next_id) start_ids_anywhere();
    *number = ++threads_made;
    pid_t id;
    do {
        id = next_id;
        if (++next_id > GTHREAD_LAST_ID) {
            next_id = GTHREAD_FIRST_ID;
            ids_wrapped = 1;
        }
    } while (ids_wrapped && gthread_by_id(id));
    gthread_registry_unlock();
    return id;
}

static void registry_add(gthread *t) {
    gthread_registry_lock();
    registry_changing = 1;
    t->live_prev = NULL;
    t->live_next = live_head;
    if (live_head) live_head->live_prev = t;
    live_head = t;
    registry_changing = 0;
    gthread_registry_unlock();
}

void gthread_each_live(void (*fn)(gthread *t)) {
    gthread_registry_lock();
    for (gthread *t = live_head; t; t = t->live_next) fn(t);
    gthread_registry_unlock();
}

static void registry_remove(gthread *t) {
    gthread_registry_lock();
    registry_changing = 1;
    if (t->live_prev) t->live_prev->live_next = t->live_next;
    else live_head = t->live_next;
    if (t->live_next) t->live_next->live_prev = t->live_prev;
    registry_changing = 0;
    gthread_registry_unlock();
}

gsig *gthread_first_sig_taker(int sig) {
    // From a signal handler: the interrupted code (or another hub's) may be
    // changing the list; then no thread is picked now.
    if (registry_changing || REAL(pthread_mutex_trylock)(&registry) != 0) return NULL;
    gsig *found = NULL;
    for (gthread *t = live_head; t && !found; t = t->live_next)
        if (!sigismember(&t->sig.mask, sig)) found = &t->sig;
    REAL(pthread_mutex_unlock)(&registry);
    return found;
}

gsig *gthread_sigwaiter(int sig) {
    if (registry_changing || REAL(pthread_mutex_trylock)(&registry) != 0) return NULL; // as above
    gsig *found = NULL;
    for (gthread *t = live_head; t && !found; t = t->live_next)
        if (t->sig.in_sigwait && sigismember(&t->sig.sigwait_set, sig)) found = &t->sig;
    REAL(pthread_mutex_unlock)(&registry);
    return found;
}

pid_t preload_hub_tid(void) { return hub_tid; }

void gthread_for_each_live(void (*fn)(gthread *t, void *arg), void *arg) {
    gthread_registry_lock();
    for (gthread *t = live_head; t; t = t->live_next)
        if (t->tp) fn(t, arg);
    gthread_registry_unlock();
}
int preload_is_main_thread(pthread_t th) { return hub_thread && th == hub_thread; }

pid_t preload_kernel_tid(pid_t tid) {
    if (tid < GTHREAD_FIRST_ID) return tid;
    gthread_registry_lock();
    gthread *t = gthread_by_id(tid);
    pid_t kernel = t ? hubs_tid_of(t->hub) : -1;
    gthread_registry_unlock();
    return kernel;
}

gthread *gthread_from(pthread_t th) {
    if (thread_block_enabled()) return thread_block_owner(th);
    gthread *g = (gthread *)th;
    return (g && g->magic == GTHREAD_MAGIC) ? g : NULL;
}

/// Give back a finished thread's stack, and with it its record (and its
/// TLS block, already emptied by finish()), which live at its top. No
/// allocator call: stack_left runs from the scheduler, as another fiber
/// resumes, perhaps inside an allocator it was preempted in.
static void gthread_free(gthread *t) { green_fiber_release_stack(t->fiber); }

/// The thread's fiber has left its stack for good (on its hub, as another
/// fiber resumes).
static void stack_left(green_fiber *f) {
    gthread *t = green_fiber_owner(f);
    int before = atomic_fetch_or(&t->detached_or_done, FINISHED);
    if (before & (DETACHED | JOINED)) gthread_free(t);
}

/// The fiber thread whose TLS is loaded: set in each fiber thread's own TLS
/// when it starts, so a signal handler run "on" a thread (its TLS loaded)
/// is that thread's. Without TLS of their own, the running fiber's owner.
static __thread gthread *tls_self __attribute__((tls_model("initial-exec")));

gthread *gthread_current(void) {
    if (thread_block_enabled()) return tls_self;
    green_fiber *f = green_fiber_current();
    return f ? green_fiber_owner(f) : NULL;
}

static __thread int cached_tid __attribute__((tls_model("initial-exec")));
static void forget_tid(void) { cached_tid = 0; } // in a fork child: a new tid

int preload_self_id(void) {
    gthread *g = gthread_current();
    if (g) return g->id;
    if (!cached_tid) cached_tid = (int)gettid(); // the main thread's stays its own after a hand-off
    return cached_tid;
}

__attribute__((constructor)) static void register_fork_handler(void) { pthread_atfork(NULL, NULL, forget_tid); }

void gthread_after_fork_in_child(void) {
    gthread *self = gthread_current();
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    registry = fresh;
    live_head = self; // the only thread of the child
    if (self) self->live_next = self->live_prev = NULL;
    main_is_gone = self != NULL;
    gsig_after_fork_in_child(self ? &self->sig : gsig_main());
    gthread_live = self ? 1 : 0;
    hub_tid = (pid_t)GREEN_SYSCALL(SYS_gettid); // the forking thread's, now the hub's
    if (self) self->id = hub_tid; // as natively: the forking thread is the child's main thread now
    next_id = 0;                  // its new threads' ids start anywhere again (start_ids_anywhere)
    if (self && self->tp) thread_block_after_fork_in_child();
    green_sched_keep_only_current();
    thread_block_forget_loaders(); // with the registry of live threads the child's
}

// ---- life of a fiber thread ------------------------------------------------------

static void finish(gthread *t) {
    if (t->tp) thread_block_free(t); // its DTV and dynamic TLS: here, on the hub thread's TLS, not from stack_left
    registry_remove(t); // its id names no thread from now on
    gsig_thread_finished(&t->sig);
    __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    gfutex_wake(&t->done, INT_MAX, 0);
    if (__atomic_sub_fetch(&gthread_live, 1, __ATOMIC_ACQ_REL) == 0) {
        if (main_is_gone) exit(0); // the last thread of a fork child: the process ends, as glibc's would
        gfutex_wake(&gthread_live, INT_MAX, 0);
    }
    // The record and the stack go once the fiber has left it (stack_left).
}

static void thread_main(void *unused) {
    (void)unused; // its TLS block on its stack, or the record: the owner is the record either way
    gthread *t = green_fiber_owner(green_fiber_current());
    if (t->tp) {
        tls_self = t;
        thread_block_enter();
    }
    // pthread_exit and cancellation unwind the thread's frames to this
    // buffer, as glibc's to the one its start_thread sets up (cancel.c).
    __pthread_unwind_buf_t exit_buf;
    if (__sigsetjmp((struct __jmp_buf_tag *)(void *)exit_buf.__cancel_jmp_buf, 0) == 0) {
        gcancel_thread_begin(t, &exit_buf);
        t->retval = t->start(t->arg);
        gcancel_thread_returned(t);
    } else {
        t->retval = gcancel_thread_result(t);
    }
    // As glibc's threads end: thread_local destructors, then pthread keys',
    // then the kernel's work on its robust list (it knows only the OS thread's).
    if (t->tp) thread_block_run_tls_destructors();
    gthread_run_key_destructors(t);
    if (t->tp) shim_robust_owner_gone(thread_block_robust_head(), t->id);
    // Its TLS is freed in finish: finish on the hub thread's.
    if (t->tp) green_fiber_set_thread_pointer(t->fiber, NULL);
    finish(t);
}

/// "thread N", without printf's cost on every pthread_create.
static void default_name(char name[16], int n) {
    char digits[12];
    int len = 0;
    do digits[len++] = (char)('0' + n % 10); while ((n /= 10) > 0 && len < 8);
    memcpy(name, "thread ", 7);
    for (int i = 0; i < len; i++) name[7 + i] = digits[len - 1 - i];
    name[7 + len] = 0;
}

/// A new thread's name (pthread_getname_np's answer until the program sets
/// one), as the kernel gives a clone: its creator's — a fiber thread's own,
/// else the calling OS thread's comm (the program's name, for main).
static void inherited_name(char name[16]) {
    gthread *creator = gthread_current();
    if (creator) memcpy(name, creator->name, 16);
    else if (os_thread_name(name) != 0) name[0] = 0;
    name[15] = 0;
}

/// The stack a new thread gets: its attribute's size, or the library's
/// default when the attribute leaves glibc's default in place.
static size_t stack_size_for(const pthread_attr_t *attr) {
    size_t size = 0;
    if (attr) pthread_attr_getstacksize(attr, &size);
    if (!size) return preload_default_stack;
    pthread_attr_t dflt;
    size_t native = 0;
    if (pthread_getattr_default_np(&dflt) == 0) {
        pthread_attr_getstacksize(&dflt, &native);
        pthread_attr_destroy(&dflt);
    }
    if (size == native) return preload_default_stack;
    if (size > GREEN_MAX_STACK_SIZE) {
        preload_log("stack of %zu bytes asked for: giving the largest, %zu", size, (size_t)GREEN_MAX_STACK_SIZE);
        size = GREEN_MAX_STACK_SIZE;
    }
    return size;
}

GREEN_EXPORT int pthread_create(pthread_t *out, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
    preload_init();
    if (!preload_fiber_mode || !green_on_fiber()) {
        int r = PREAL(pthread_create)(out, attr, start, arg);
        if (r == 0 && preload_fiber_mode) thread_block_wrap_setxid();
        return r;
    }
    hubs_start();    // with a second thread, the other hubs
    watcher_start(); // ...and one thread may spin waiting for another, or block in a call
    int detach = 0;
    if (attr && pthread_attr_getdetachstate(attr, &detach) == 0) detach = detach == PTHREAD_CREATE_DETACHED;
    gcancel_init();
    green_sched *hub = hubs_pick();
    size_t stack = stack_size_for(attr);
    gthread *t;
    green_fiber *f;
    if (thread_block_enabled()) {
        // As glibc: the TLS and the descriptor at the top of the thread's
        // stack, which already holds the fiber's record (no allocation).
        // A stack whose last thread ended brings that thread's block back.
        void *block;
        uintptr_t leftover = 0;
        f = green_fiber_create_reusing(hub, stack, thread_block_size(), thread_block_align(), thread_main, &block,
                                       &leftover);
        if (!f) return EAGAIN; // what pthread_create says when it cannot have the memory
        t = thread_block_create_at(block, hubs_thread_pointer_of(hub), leftover);
        if (!t) {
            green_fiber_discard(f);
            return EAGAIN;
        }
    } else { // the record alone at the top of the stack
        void *record;
        f = green_fiber_create_reserving(hub, stack, sizeof(gthread), 64, thread_main, &record);
        if (!f) return EAGAIN;
        t = memset(record, 0, sizeof(gthread));
    }
    t->magic = GTHREAD_MAGIC;
    t->start = start;
    t->arg = arg;
    int number;
    t->id = take_id(&number);
    t->detached_or_done = detach ? DETACHED : 0;
    t->hub = hub;
    t->fiber = f;
    green_fiber_keep_stack(f, stack_left);
    if (t->tp) {
        green_fiber_set_thread_pointer(f, t->tp);
        __libc_single_threaded = 0; // as glibc's pthread_create: the process has threads now
    }
    green_fiber_set_owner(f, t);
    inherited_name(t->name);
    char label[16]; // the fiber dump's, until the program names the thread
    default_name(label, number);
    green_fiber_set_name(f, label);
    __atomic_add_fetch(&gthread_live, 1, __ATOMIC_ACQ_REL);
    gsig_thread_started(&t->sig, f, t->tp);
    registry_add(t);
    *out = gthread_handle(t); // before it runs, as glibc's
    preload_log("pthread_create: fiber thread %d on hub %d, stack %zu KiB%s", number,
                hubs_index_of(hub), stack >> 10, detach ? ", detached" : "");
    green_fiber_start(f); // on another hub it may run from now on
    return 0;
}

/// A joiner cancelled while it waits leaves the thread joinable (glibc's cleanup).
static void join_cancelled(void *arg) { atomic_fetch_and(&((gthread *)arg)->detached_or_done, ~JOINING); }

/// Wait for t to finish (until the deadline), take its value, free it. A
/// cancellation point while it waits, as glibc's.
static int join(gthread *t, void **retval, clockid_t clock, const struct timespec *abstime, int try_only) {
    if (t == gthread_current()) return EDEADLK;
    int state = atomic_load(&t->detached_or_done);
    if (state & (DETACHED | JOINING)) return EINVAL;
    if (try_only && !__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) return EBUSY;
    if (atomic_fetch_or(&t->detached_or_done, JOINING) & (DETACHED | JOINING)) return EINVAL;
    int r = 0;
    pthread_cleanup_push(join_cancelled, t);
    while (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) {
        r = gfutex_wait(&t->done, 0, clock, abstime, GF_CANCEL, "pthread_join");
        if (r == ETIMEDOUT || r == EINVAL) break;
        r = 0;
    }
    pthread_cleanup_pop(0);
    if (r) {
        atomic_fetch_and(&t->detached_or_done, ~JOINING);
        return r;
    }
    if (retval) *retval = t->retval;
    if (atomic_fetch_or(&t->detached_or_done, JOINED) & FINISHED) gthread_free(t); // else when its fiber leaves the stack
    return 0;
}

GREEN_EXPORT int pthread_join(pthread_t th, void **retval) {
    gthread *t = gthread_from(th);
    return t ? join(t, retval, CLOCK_REALTIME, NULL, 0) : PREAL(pthread_join)(th, retval);
}

GREEN_EXPORT int pthread_tryjoin_np(pthread_t th, void **retval) {
    gthread *t = gthread_from(th);
    return t ? join(t, retval, CLOCK_REALTIME, NULL, 1) : PREAL(pthread_tryjoin_np)(th, retval);
}

GREEN_EXPORT int pthread_timedjoin_np(pthread_t th, void **retval, const struct timespec *abstime) {
    gthread *t = gthread_from(th);
    return t ? join(t, retval, CLOCK_REALTIME, abstime, 0) : PREAL(pthread_timedjoin_np)(th, retval, abstime);
}

GREEN_EXPORT int pthread_clockjoin_np(pthread_t th, void **retval, clockid_t clock, const struct timespec *abstime) {
    gthread *t = gthread_from(th);
    if (!t) return PREAL(pthread_clockjoin_np)(th, retval, clock, abstime);
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    return join(t, retval, clock, abstime, 0);
}

GREEN_EXPORT int pthread_detach(pthread_t th) {
    gthread *t = gthread_from(th);
    if (!t) return PREAL(pthread_detach)(th);
    int before = atomic_load(&t->detached_or_done);
    do {
        if (before & DETACHED) return EINVAL;
        if (before & JOINING) return 0; // as glibc: a thread being joined stays the joiner's
    } while (!atomic_compare_exchange_weak(&t->detached_or_done, &before, before | DETACHED));
    if (before & FINISHED) gthread_free(t); // it had already finished: nobody else holds it (else stack_left frees)
    return 0;
}

GREEN_EXPORT void pthread_exit(void *retval) {
    gthread *t = gthread_current();
    // The unwind glibc's pthread_exit makes: C++ destructors and cleanup
    // handlers, to the end of thread_main (cancel.c).
    if (t) gcancel_exit(t, retval);
    if (preload_fiber_mode && green_on_fiber()) {
        // main: the process lives on until the last thread has finished, then
        // exits with status 0, as glibc does. Its OS thread lives on too, so
        // the kernel's work on its robust list at its end is the library's.
        shim_robust_owner_gone(thread_block_robust_head(), preload_self_id());
        uint32_t live;
        while ((live = __atomic_load_n(&gthread_live, __ATOMIC_ACQUIRE)) != 0)
            gfutex_wait(&gthread_live, live, CLOCK_MONOTONIC, NULL, 0, "pthread_exit");
        exit(0);
    }
    PREAL(pthread_exit)(retval);
    __builtin_unreachable();
}

GREEN_EXPORT pthread_t pthread_self(void) {
    gthread *t = gthread_current();
    return t ? gthread_handle(t) : PREAL(pthread_self)();
}

GREEN_EXPORT int pthread_equal(pthread_t a, pthread_t b) { return a == b; }

GREEN_EXPORT int sched_yield(void) {
    if (preload_fiber_mode && green_on_fiber()) {
        green_yield();
        gcancel_async_point(); // an asynchronous cancellation acts when the thread runs again
        return 0;
    }
    return PREAL(sched_yield)();
}

// ---- calls about a thread ----------------------------------------------------------------

GREEN_EXPORT int pthread_getattr_np(pthread_t th, pthread_attr_t *attr) {
    gthread *t = gthread_from(th);
    if (!t) return PREAL(pthread_getattr_np)(th, attr);
    if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) return ESRCH;
    void *lo, *hi;
    green_fiber_stack_bounds(t->fiber, &lo, &hi);
    int r = pthread_attr_init(attr);
    if (r) return r;
    pthread_attr_setstack(attr, lo, (size_t)((char *)hi - (char *)lo));
    pthread_attr_setdetachstate(attr, (atomic_load(&t->detached_or_done) & DETACHED) ? PTHREAD_CREATE_DETACHED
                                                                                     : PTHREAD_CREATE_JOINABLE);
    return 0;
}

GREEN_EXPORT int pthread_setname_np(pthread_t th, const char *name) {
    gthread *t = gthread_from(th);
    if (!t) return PREAL(pthread_setname_np)(th, name);
    if (strlen(name) >= sizeof t->name) return ERANGE;
    strcpy(t->name, name);
    if (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) green_fiber_set_name(t->fiber, name);
    return 0;
}

GREEN_EXPORT int pthread_getname_np(pthread_t th, char *buf, size_t len) {
    gthread *t = gthread_from(th);
    if (!t) return PREAL(pthread_getname_np)(th, buf, len);
    if (strlen(t->name) >= len) return ERANGE;
    strcpy(buf, t->name);
    return 0;
}

/// A name from the program's memory as the kernel's PR_SET_NAME reads it: up
/// to 15 bytes and a NUL, stopping at the first NUL; EFAULT only where a byte
/// it needs is not readable (a short name at the end of a page is fine).
static int copy_in_name(char name[16], const char *from) {
    size_t page = 4096, done = 0;
    while (done < 15) {
        size_t n = page - ((uintptr_t)(from + done) & (page - 1)); // to the end of this page
        if (n > 15 - done) n = 15 - done;
        if (shim_copy_in(name + done, from + done, n) != 0) return -1;
        if (memchr(name + done, 0, n)) return 0;
        done += n;
    }
    name[15] = 0;
    return 0;
}

/// PR_SET_NAME and PR_GET_NAME name the calling thread: on a fiber thread,
/// that is the thread's own name (pthread_getname_np's), not the comm of the
/// hub thread it runs on, which every thread of that hub shows in /proc.
/// Everything else is the kernel's.
GREEN_EXPORT int prctl(int option, ...) {
    va_list ap;
    va_start(ap, option);
    unsigned long arg2 = va_arg(ap, unsigned long), arg3 = va_arg(ap, unsigned long),
                  arg4 = va_arg(ap, unsigned long), arg5 = va_arg(ap, unsigned long);
    va_end(ap);
    gthread *t = (option == PR_SET_NAME || option == PR_GET_NAME) ? gthread_current() : NULL;
    if (!t) return PREAL(prctl)(option, arg2, arg3, arg4, arg5);
    if (option == PR_GET_NAME) return shim_copy_out((void *)arg2, t->name, sizeof t->name);
    char name[16] = {0};
    if (copy_in_name(name, (const char *)arg2) != 0) return -1;
    memcpy(t->name, name, sizeof name);
    if (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) green_fiber_set_name(t->fiber, name);
    return 0;
}

GREEN_EXPORT int pthread_kill(pthread_t th, int sig) {
    gthread *t = gthread_from(th);
    if (t) {
        if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) return ESRCH;
        return gsig_kill(&t->sig, sig);
    }
    if (preload_is_main_thread(th) && gsig_main()) return gsig_kill(gsig_main(), sig);
    return PREAL(pthread_kill)(th, sig);
}

