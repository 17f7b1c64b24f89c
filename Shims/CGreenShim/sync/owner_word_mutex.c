// owner_word_mutex.c — robust and priority-inheritance mutexes under
// `green run`, whose lock word holds its owner's thread id.
//
// glibc's code for them writes the descriptor's tid into the word, which
// every fiber of a hub shares (a second fiber thread took the first one's
// lock for its own, or waited in the kernel and blocked the hub: a
// deadlock), and it waits and wakes with its own futex calls, which fibers
// never see. So under `green run` every caller takes them here, with
// glibc's word protocol and list layout and the program's thread ids
// (gettid(): a fiber thread's own, a native thread's kernel tid):
//
// - word: owner id | FUTEX_WAITERS (somebody may wait) | FUTEX_OWNER_DIED
//   (the owner ended holding it); 0 when free. Waits are the green futex's.
// - robust ones are linked, while held, into the owner's robust list in
//   its descriptor (glibc's ENQUEUE_MUTEX), with list_op_pending set around
//   each change. A fiber thread's list is not the kernel's: when it ends,
//   shim_robust_owner_gone does what the kernel does for a thread that
//   exits (marks each word FUTEX_OWNER_DIED, wakes a waiter); the next
//   locker gets EOWNERDEAD.
// - PI ones get no priority inheritance: fibers of a hub have one priority.
//
// Priority-protection mutexes, and every kind in a linked Swift program
// (whose fibers are not pthreads), stay libc's.
#include "sync.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdint.h>

#define KIND_TYPE 3          // normal, recursive, errorcheck, adaptive
#define KIND_ROBUST 16       // PTHREAD_MUTEX_ROBUST_NORMAL_NP
#define KIND_PI 32           // PTHREAD_MUTEX_PRIO_INHERIT_NP
#define KIND_PP 64           // PTHREAD_MUTEX_PRIO_PROTECT_NP
#define KIND_PSHARED 128
#define OWNER_INCONSISTENT INT_MAX         // glibc's PTHREAD_MUTEX_INCONSISTENT: owner died, not yet consistent
#define OWNER_NOTRECOVERABLE (INT_MAX - 1) // glibc's PTHREAD_MUTEX_NOTRECOVERABLE: unlocked while inconsistent

/// glibc's struct robust_list_head, in each thread's descriptor.
typedef struct robust_head {
    void *list;          ///< the newest entry (&mutex->__data.__list.__next, bit 0 set for PI), or itself when empty
    long futex_offset;   ///< from an entry to its mutex's lock word
    void *list_op_pending; ///< the entry being taken or released
} robust_head;

/// From a list pointer (to a __next field, bit 0 set for PI) to the
/// __pthread_list_t {__prev, __next} holding it (glibc's QUEUE_PTR_ADJUST).
static inline __pthread_list_t *node_of(void *entry) {
    return (__pthread_list_t *)(((uintptr_t)entry & ~(uintptr_t)1) - offsetof(__pthread_list_t, __next));
}

static inline int kind_of(pthread_mutex_t *m) { return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED); }
static inline uint32_t *word_of(pthread_mutex_t *m) { return (uint32_t *)&m->__data.__lock; }
static inline int futex_flags(int kind) { return (kind & KIND_PSHARED) ? GF_SHARED : 0; }
static inline int owner_of(pthread_mutex_t *m) { return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED); }
static inline void set_owner(pthread_mutex_t *m, int id) { __atomic_store_n(&m->__data.__owner, id, __ATOMIC_RELAXED); }

/// The caller's robust list; NULL where libc's code stays in charge.
static robust_head *my_list(void) { return shim_pthreads ? shim_pthreads->robust_head() : NULL; }

int shim_owner_word_kind(int kind) {
    return kind >= 0 && (kind & (KIND_ROBUST | KIND_PI)) && !(kind & KIND_PP) && my_list() != NULL;
}

static void set_pending(robust_head *h, pthread_mutex_t *m) {
    if (h) __atomic_store_n(&h->list_op_pending, m ? (void *)&m->__data.__list.__next : NULL, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST); // ordered with the list's changes, as glibc's compiler barriers
}

/// glibc's ENQUEUE_MUTEX: the newest at the head.
static void enqueue(robust_head *h, pthread_mutex_t *m, int pi) {
    if (!h) return;
    node_of(h->list)->__prev = (void *)&m->__data.__list.__next;
    m->__data.__list.__next = h->list;
    m->__data.__list.__prev = (void *)h;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    h->list = (void *)((uintptr_t)&m->__data.__list.__next | (uintptr_t)(pi ? 1 : 0));
}

/// glibc's DEQUEUE_MUTEX (from whichever list holds it).
static void dequeue(pthread_mutex_t *m) {
    if (!m->__data.__list.__next) return; // not linked (the list was unknown when it was taken)
    node_of(m->__data.__list.__next)->__prev = m->__data.__list.__prev;
    node_of(m->__data.__list.__prev)->__next = m->__data.__list.__next;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    m->__data.__list.__prev = NULL;
    m->__data.__list.__next = NULL;
}

/// The word was wanted: wake one waiter, and on a fiber let it run before
/// going on (as mutex.c's wake_waiter: a fiber that locks again at once
/// would otherwise take it back every time).
static void wake_waiter(uint32_t *word, int kind) {
    if (gfutex_wake(word, 1, futex_flags(kind)) > 0 && green_on_fiber()) shim_yield_keeping_interrupts();
}

/// Take the word for `id`, parking while another holds it. 0, EOWNERDEAD
/// (taken from an owner that died: inconsistent until made so), EDEADLK or
/// the recursive count's EAGAIN (already the caller's), EBUSY (try: held),
/// ETIMEDOUT, ENOTRECOVERABLE.
static int acquire(pthread_mutex_t *m, int kind, int try, clockid_t clock, const struct timespec *abstime) {
    uint32_t *word = word_of(m);
    uint32_t id = (uint32_t)shim_owner_id();
    int robust = kind & KIND_ROBUST;
    robust_head *h = robust ? my_list() : NULL;
    set_pending(h, m);
    uint32_t waiters = 0; // FUTEX_WAITERS once this caller may have shared it (else a wake-up is lost)
    uint32_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    int r = 0;
    for (;;) {
        if (v == 0) {
            if (__atomic_compare_exchange_n(word, &v, id | waiters, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) break;
            continue;
        }
        if (robust && (v & FUTEX_OWNER_DIED)) {
            if (!__atomic_compare_exchange_n(word, &v, id | (v & FUTEX_WAITERS) | waiters, 0, __ATOMIC_ACQUIRE,
                                             __ATOMIC_RELAXED))
                continue;
            m->__data.__count = 1;
            set_owner(m, OWNER_INCONSISTENT); // the old owner still counts among __nusers
            enqueue(h, m, kind & KIND_PI);
            set_pending(h, NULL);
            return EOWNERDEAD;
        }
        if ((v & FUTEX_TID_MASK) == id) { // (a normal one waits for ever, as glibc's)
            int type = kind & KIND_TYPE;
            if (type == PTHREAD_MUTEX_ERRORCHECK) {
                r = EDEADLK;
                break;
            }
            if (type == PTHREAD_MUTEX_RECURSIVE) {
                set_pending(h, NULL);
                if (m->__data.__count + 1 == 0) return EAGAIN;
                m->__data.__count++;
                return 0;
            }
        }
        if (try) {
            r = EBUSY;
            break;
        }
        if (!(v & FUTEX_WAITERS)) {
            if (!__atomic_compare_exchange_n(word, &v, v | FUTEX_WAITERS, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                continue;
            v |= FUTEX_WAITERS;
        }
        waiters = FUTEX_WAITERS;
        // glibc leaves a PI mutex's wait to the kernel's FUTEX_LOCK_PI, which
        // refuses a time before the epoch (the robust kinds time out).
        if (abstime && abstime->tv_sec < 0 && (kind & KIND_PI)) {
            r = EINVAL;
            break;
        }
        r = gfutex_wait(word, v, clock, abstime, futex_flags(kind), "pthread_mutex");
        if (r == ETIMEDOUT || r == EINVAL) break; // (a bad timeout only matters once it must wait, as glibc's)
        r = 0;
        v = __atomic_load_n(word, __ATOMIC_RELAXED);
    }
    if (r) {
        set_pending(h, NULL);
        return r;
    }
    if (robust && owner_of(m) == OWNER_NOTRECOVERABLE) { // released by an owner that never made it consistent
        m->__data.__count = 0;
        if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) & FUTEX_WAITERS) wake_waiter(word, kind);
        set_pending(h, NULL);
        return ENOTRECOVERABLE;
    }
    m->__data.__count = 1;
    if (robust) enqueue(h, m, kind & KIND_PI);
    set_pending(h, NULL);
    set_owner(m, (int)id);
    m->__data.__nusers++;
    return 0;
}

int shim_owner_word_lock(pthread_mutex_t *m, int try, clockid_t clock, const struct timespec *abstime) {
    return acquire(m, kind_of(m), try, clock, abstime);
}

int shim_owner_word_unlock(pthread_mutex_t *m) {
    int kind = kind_of(m);
    uint32_t *word = word_of(m);
    int id = shim_owner_id();
    int robust = kind & KIND_ROBUST;
    int type = kind & KIND_TYPE;
    int new_owner = 0;
    uint32_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    int mine = (int)(v & FUTEX_TID_MASK) == id;
    if (robust && mine && owner_of(m) == OWNER_INCONSISTENT) {
        // Released before pthread_mutex_consistent: nobody can have it again.
        if (type == PTHREAD_MUTEX_RECURSIVE && --m->__data.__count != 0) return ENOTRECOVERABLE;
        new_owner = OWNER_NOTRECOVERABLE;
    } else if (type == PTHREAD_MUTEX_RECURSIVE) {
        if (owner_of(m) != id) return EPERM;
        if (--m->__data.__count != 0) return 0;
    } else if (!mine) {
        return EPERM; // glibc checks the word's owner for every robust and PI kind
    }
    robust_head *h = robust ? my_list() : NULL;
    set_pending(h, m);
    if (robust) dequeue(m);
    set_owner(m, new_owner);
    m->__data.__nusers--;
    if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) & FUTEX_WAITERS) wake_waiter(word, kind);
    set_pending(h, NULL);
    return 0;
}

int shim_owner_word_consistent(pthread_mutex_t *m) {
    if (!(kind_of(m) & KIND_ROBUST) || owner_of(m) != OWNER_INCONSISTENT) return EINVAL;
    set_owner(m, shim_owner_id());
    return 0;
}

/// What the kernel does for each entry of an exiting thread's list: a word
/// that still names the thread gets FUTEX_OWNER_DIED (and keeps
/// FUTEX_WAITERS), and one waiter is woken to take it.
static void owner_died(void *entry, int id, int pending) {
    pthread_mutex_t *m = (pthread_mutex_t *)((char *)node_of(entry) - offsetof(pthread_mutex_t, __data.__list));
    uint32_t *word = word_of(m);
    uint32_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    // The one being taken by a waiter that was woken and ended first: free,
    // it may have kept another waiter from its wake-up (the kernel's
    // handle_futex_death does the same for a non-PI word).
    if (pending && v == 0 && !(kind_of(m) & KIND_PI)) {
        gfutex_wake(word, 1, futex_flags(kind_of(m)));
        return;
    }
    while ((int)(v & FUTEX_TID_MASK) == id) {
        if (__atomic_compare_exchange_n(word, &v, (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED, 0, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED)) {
            if (v & FUTEX_WAITERS) gfutex_wake(word, 1, futex_flags(kind_of(m)));
            return;
        }
    }
}

void shim_robust_owner_gone(void *list, int id) {
    robust_head *h = list;
    if (!h) return;
    uintptr_t pending = (uintptr_t)h->list_op_pending & ~(uintptr_t)1;
    // As the kernel's exit_robust_list: every entry but the one being taken
    // or released, then that one; at most 2048 (a list a corrupt mutex made
    // circular ends).
    int walked = 0;
    for (void *entry = h->list; entry != (void *)h && walked < 2048; walked++) {
        void *next = node_of(entry)->__next;
        if (((uintptr_t)entry & ~(uintptr_t)1) != pending) owner_died(entry, id, 0);
        entry = next;
    }
    if (pending) owner_died(h->list_op_pending, id, 1);
    h->list = h;
    h->list_op_pending = NULL;
}
