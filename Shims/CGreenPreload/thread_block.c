// thread_block.c — what glibc gives a new thread, for each fiber thread: a
// static TLS block holding every loaded module's initial TLS image, a DTV,
// and a thread descriptor (glibc's `struct pthread`), all in one block
// together with the library's own record of the thread (gthread), at the
// top of the fiber's stack as glibc places them (thread.c). The
// fiber's thread pointer points at the descriptor, so `__thread` variables,
// errno, C++ `thread_local`, Rust's thread handle and glibc's own per-thread
// state (locale, malloc's thread cache, dlerror) are the thread's own.
//
// Layout, as glibc's for the architecture (block_tp and descriptor_of below):
//
//   x86_64 (TLS variant II: the TLS blocks lie below the thread pointer)
//     [ static TLS blocks + surplus | struct pthread | gthread ]
//                                   ^ thread pointer = descriptor = pthread_t
//   aarch64 (TLS variant I: the descriptor lies below the thread pointer,
//   the TCB {dtv, private} at it and the TLS blocks above)
//     [ struct pthread | TCB, static TLS blocks + surplus | gthread ]
//     ^ pthread_t      ^ thread pointer
//
// glibc's dynamic linker does the TLS part (_dl_allocate_tls: DTV, images,
// the TLS of modules dlopen'ed later on first use). The descriptor fields a
// program or glibc can reach are set as glibc's pthread_create sets them;
// README's "A fiber thread is a thread" lists each one and how it is handled. The offsets
// come from the tables glibc exports for libthread_db (_thread_db_*), and are
// checked against the main thread's own descriptor before they are trusted:
// when anything does not match, fiber threads share the hub thread's TLS, as
// before, and GREEN_DEBUG says why.
#include "preload.h"
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NO_RSEQ LONG_MIN
#if defined(__x86_64__)
#define TP_INSTRUCTION "wrfsbase"
#else
#define TP_INSTRUCTION "msr tpidr_el0"
#endif

/// What the library knows of glibc's thread descriptor, from its exported tables.
static struct {
    bool enabled;
    size_t static_size;  ///< static TLS block, descriptor included (_dl_get_tls_static_info)
    size_t static_align;
    size_t descriptor;   ///< sizeof(struct pthread)
    size_t tid;          ///< offsets in struct pthread …
    size_t list;         ///< list_t: glibc's thread lists (a fork child unlinks the forking thread)
    size_t robust_prev;  ///< the robust-mutex list the kernel walks when the thread dies
    size_t robust_head;
    size_t start_routine;
    size_t cancelhandling;
    long rseq;           ///< __rseq_offset: the rseq area, from the thread pointer (NO_RSEQ: none)
    long robust_futex_offset; ///< robust_head.futex_offset of every thread
    void *(*allocate_tls)(void *tcb);
    void (*deallocate_tls)(void *tcb, bool free_tcb);
    long rseq_in_descriptor; ///< the rseq area's offset in struct pthread (-1: not in it)
    size_t keep[3][2];   ///< descriptor ranges [from, to), in order, nobody writes for a fiber thread:
                         ///< in a finished thread's block still zero, not cleared again for the next
    void (*call_tls_dtors)(void);
    void (*ctype_init)(void);
} glibc;

/// pthread_t values whose descriptor's start routine is this are fiber threads.
static void *fiber_thread_start(void *arg) { return arg; }

/// Offset of a struct pthread field, from glibc's libthread_db table
/// `_thread_db_pthread_<field>` ({bits, count, offset}); -1 if absent or of
/// another size than expected.
static long field(const char *name, uint32_t bits) {
    const uint32_t *d = dlsym(RTLD_DEFAULT, name);
    return d && d[0] == bits && d[1] == 1 ? (long)d[2] : -1;
}

/// glibc's malloc keeps per-thread state in libc's TLS (the thread cache and
/// the thread's arena), and only glibc's own thread exit, which is not
/// exported, hands it back: each fiber thread would leak its cache. Fiber
/// threads run one at a time on their hub thread and malloc never parks, so
/// they share the hub thread's instead: these are the words (offsets from the
/// thread pointer) that a thread's first malloc sets, found once by a probe.
#define MALLOC_WORDS_MAX 4
static long malloc_words[MALLOC_WORDS_MAX];
static int malloc_word_count;
static void find_malloc_words(void);
static long link_map_modid = -1, link_map_tls_offset = -1; // offsets in glibc's struct link_map
static int find_new_static(struct dl_phdr_info *info, size_t size, void *data);

static bool refuse(const char *why) {
    preload_log("fiber threads share the hub thread's TLS: %s", why);
    return false;
}

// ---- where the parts of a block lie ------------------------------------------------

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }
static size_t record_size(void) { return round64(sizeof(gthread)); }

#if defined(__x86_64__)
/// Bytes of the block from its start to the thread pointer.
static size_t tp_offset(void) { return glibc.static_size - glibc.descriptor; }
/// The descriptor (what pthread_self returns) of the thread whose thread pointer is tp.
static char *descriptor_of(void *tp) { return tp; }
/// The library's record of the thread whose descriptor is pd.
static gthread *record_of(char *pd) { return (gthread *)(pd + glibc.descriptor); }
size_t thread_block_size(void) { return glibc.static_size + record_size(); }
#elif defined(__aarch64__)
static size_t tp_offset(void) {
    size_t a = glibc.static_align;
    return (glibc.descriptor + a - 1) & ~(a - 1); // the descriptor, the thread pointer aligned as the TLS needs
}
static char *descriptor_of(void *tp) { return (char *)tp - glibc.descriptor; }
static gthread *record_of(char *pd) { return (gthread *)(pd + glibc.descriptor + round64(glibc.static_size)); }
size_t thread_block_size(void) { return tp_offset() + round64(glibc.static_size) + record_size(); }
#endif

size_t thread_block_align(void) { return glibc.static_align > 64 ? glibc.static_align : 64; }

/// What of a finished thread's descriptor need not be cleared again for the
/// next thread on its stack (glibc's stack cache leaves most of a cached
/// descriptor alone too): the ranges no code writes for a fiber thread, so
/// still zero since the block was first made. On x86_64 tcbhead_t's unused
/// tail; the key-data arrays after cancelhandling and flags (the library
/// keeps fiber threads' pthread and C11 keys: keys.c); the resolver state
/// `res` (a fiber thread's __resp points to the global _res: glibc points
/// it at `res` only in the threads it starts). Each where the tables glibc
/// exports for libthread_db place its neighbours as glibc does (2.36 to
/// 2.40 for `res`); anything else, and those bytes are cleared too.
static void learn_unwritten(void) {
    if (getenv("GREEN_THREAD_BLOCK_CLEAR")) return; // clear it all, to tell whether a problem comes from this
    const uint32_t *key_data = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread_key_data");
    long specific = field("_thread_db_pthread_specific", 2048);
#if defined(__x86_64__)
    // __glibc_unused2 and __padding, when tcbhead_t is the 704 bytes it is
    // since glibc 2.26: the list that follows it says so.
    if (glibc.list == 704) {
        glibc.keep[0][0] = 128;
        glibc.keep[0][1] = 704;
    }
#endif
    // struct pthread: ..., int cancelhandling, int flags,
    // struct pthread_key_data specific_1stblock[32], *specific[32],
    // bool specific_used, ...
    if (key_data && specific > 0 && (size_t)specific == glibc.cancelhandling + 8 + 32 * (size_t)*key_data) {
        glibc.keep[1][0] = glibc.cancelhandling + 8;
        glibc.keep[1][1] = (size_t)specific + 32 * sizeof(void *);
    }
    // ..., *nextevent, struct _Unwind_Exception exc (16-aligned, 32 bytes),
    // stackblock, stackblock_size, guardsize, reported_guardsize, tpp,
    // struct __res_state res (568 bytes), internal_sigset_t sigmask, bool c11,
    // bool exiting, int exit_lock, struct tls_internal_t tls_state (16),
    // struct rseq rseq_area (32-aligned): the rseq area 704 bytes after nextevent.
    long nextevent = field("_thread_db_pthread_nextevent", 64);
    if (nextevent > 0 && nextevent % 16 == 0 && glibc.rseq_in_descriptor == nextevent + 704) {
        glibc.keep[2][0] = (size_t)nextevent + 88;
        glibc.keep[2][1] = (size_t)nextevent + 88 + 568;
    }
}

static bool learn_layout(void) {
#if !defined(__x86_64__) && !defined(__aarch64__)
    return refuse("per-thread TLS is implemented for x86_64 and aarch64 only");
#else
    void (*static_info)(size_t *, size_t *) = dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    glibc.allocate_tls = dlsym(RTLD_DEFAULT, "_dl_allocate_tls");
    glibc.deallocate_tls = dlsym(RTLD_DEFAULT, "_dl_deallocate_tls");
    glibc.call_tls_dtors = dlsym(RTLD_DEFAULT, "__call_tls_dtors");
    glibc.ctype_init = dlsym(RTLD_DEFAULT, "__ctype_init");
    if (!static_info || !glibc.allocate_tls || !glibc.deallocate_tls || !glibc.call_tls_dtors || !glibc.ctype_init)
        return refuse("glibc's TLS allocation functions are missing");
    static_info(&glibc.static_size, &glibc.static_align);
    const uint32_t *size = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
    long tid = field("_thread_db_pthread_tid", 32), list = field("_thread_db_pthread_list", 128);
    long start = field("_thread_db_pthread_start_routine", 64);
    long cancel = field("_thread_db_pthread_cancelhandling", 32);
    if (!size || tid < 0 || list < 0 || start < 0 || cancel < 0) return refuse("glibc's descriptor tables are missing");
    glibc.descriptor = *size;
    glibc.tid = (size_t)tid;
    glibc.list = (size_t)list;
    glibc.start_routine = (size_t)start;
    glibc.cancelhandling = (size_t)cancel;
    if (glibc.static_align & (glibc.static_align - 1)) return refuse("unexpected static TLS alignment");

    // Check the layout against the main thread's descriptor. x86_64 glibc
    // puts it at the thread pointer (whose third word points to itself),
    // aarch64's right below; in it tid, a padding int, robust_prev and
    // robust_head, which an idle thread has pointing at itself.
    char *self = (char *)PREAL(pthread_self)();
#if defined(__x86_64__)
    if (glibc.static_size <= glibc.descriptor || (glibc.static_size - glibc.descriptor) % glibc.static_align)
        return refuse("unexpected static TLS size");
    if (self != (char *)__builtin_thread_pointer() || *(void **)(self + 16) != self)
        return refuse("the thread pointer is not the descriptor");
#else
    if (self != descriptor_of(__builtin_thread_pointer())) return refuse("the descriptor is not below the thread pointer");
#endif
    if (*(pid_t *)(self + glibc.tid) != (pid_t)GREEN_SYSCALL(SYS_gettid)) return refuse("the tid field does not match");
    glibc.robust_prev = glibc.tid + 8;
    glibc.robust_head = glibc.tid + 16;
    if (*(void **)(self + glibc.robust_prev) != self + glibc.robust_head ||
        *(void **)(self + glibc.robust_head) != self + glibc.robust_head)
        return refuse("the robust-list fields do not match");
    glibc.robust_futex_offset = *(long *)(self + glibc.robust_head + 8);
    // The rseq area, from the thread pointer: set only where it is inside
    // the descriptor (glibc 2.35 and later), else left alone.
    const long *rseq_offset = dlsym(RTLD_DEFAULT, "__rseq_offset");
    glibc.rseq = NO_RSEQ;
    glibc.rseq_in_descriptor = -1;
    if (rseq_offset) {
        long from_pd = *rseq_offset + ((char *)__builtin_thread_pointer() - self); // its offset in the descriptor
        if (from_pd >= 0 && (size_t)from_pd + 32 <= glibc.descriptor) {
            glibc.rseq = *rseq_offset;
            glibc.rseq_in_descriptor = from_pd;
        }
    }
    learn_unwritten();
    return true;
#endif
}

void thread_block_init(void) {
    const char *tls = getenv("GREEN_THREAD_TLS");
    if (tls && strcmp(tls, "shared") == 0) {
        refuse("GREEN_THREAD_TLS=shared");
        return;
    }
    glibc.enabled = learn_layout();
    if (!glibc.enabled) return;
    link_map_modid = field("_thread_db_link_map_l_tls_modid", 64);
    link_map_tls_offset = field("_thread_db_link_map_l_tls_offset", 64);
    if (link_map_modid >= 0 && link_map_tls_offset >= 0) dl_iterate_phdr(find_new_static, NULL); // the initial set
    else preload_log("libraries dlopen'ed later with static TLS: not copied into fiber threads (no link_map tables)");
}

void thread_block_start(void) {
    if (!glibc.enabled) return;
    find_malloc_words();
    if (glibc.enabled) {
        preload_log("fiber threads get TLS of their own: %zu bytes of static TLS, thread pointer by %s",
                    glibc.static_size, green_tp_uses_syscall() ? "arch_prctl" : TP_INSTRUCTION);
        size_t kept = 0;
        for (int r = 0; r < 3; r++) kept += glibc.keep[r][1] - glibc.keep[r][0];
        preload_log("a thread made on an ended thread's stack: %zu of the descriptor's %zu bytes cleared again",
                    glibc.descriptor - kept, glibc.descriptor);
    }
}

bool thread_block_enabled(void) { return glibc.enabled; }

/// libc's TLS block: where it starts from the thread pointer, and its size.
struct tls_range {
    long offset;
    size_t size;
};

static int find_libc_tls(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct tls_range *r = data;
    const char *slash = strrchr(info->dlpi_name, '/');
    const char *name = slash ? slash + 1 : info->dlpi_name;
    if (strncmp(name, "libc.so", 7) != 0 || !info->dlpi_tls_data) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            r->offset = (char *)info->dlpi_tls_data - (char *)__builtin_thread_pointer();
            r->size = info->dlpi_phdr[i].p_memsz;
            return 1;
        }
    return 0;
}

/// Run a first malloc on a probe thread block and see which pointer-sized
/// words of libc's TLS it sets. Called once, on the main thread, before any
/// fiber thread exists.
static void find_malloc_words(void) {
    struct tls_range libc = {0, 0};
    int found = dl_iterate_phdr(find_libc_tls, &libc);
#if defined(__x86_64__)
    int inside = libc.offset < 0; // static TLS lies below the thread pointer...
#else
    int inside = libc.offset > 0; // ...or above it
#endif
    if (!found || !inside || libc.size > 4096) {
        preload_log("glibc's malloc state stays per fiber thread: libc's TLS block not found");
        return;
    }
    void *volatile warm = malloc(16); // the hub thread has its malloc state, to be shared
    free(warm);
    void *block = NULL;
    if (posix_memalign(&block, thread_block_align(), thread_block_size()) != 0) return;
    gthread *probe = thread_block_create_at(block, __builtin_thread_pointer(), 0); // kept: its malloc state is the probe's
    if (!probe) return;
    size_t words = libc.size / sizeof(void *);
    char *mine = (char *)probe->tp + libc.offset;
    void **before = malloc(words * sizeof(void *));
    if (!before) return;
    memcpy(before, mine, words * sizeof(void *));

    sigset_t all, old;
    sigfillset(&all);
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(long)); // no handler on the probe's TLS
    green_fiber *self = green_fiber_current();
    green_fiber_set_thread_pointer(self, probe->tp);
    void *volatile first = malloc(16); // volatile: a compiler may drop a free(malloc(n)) pair
    free(first);
    green_fiber_set_thread_pointer(self, NULL);
    GREEN_SYSCALL(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(long));

    int changed = 0;
    for (size_t i = 0; i < words; i++) {
        void *now = ((void **)(void *)mine)[i];
        if (now == before[i]) continue;
        if (changed < MALLOC_WORDS_MAX && now) malloc_words[changed] = libc.offset + (long)(i * sizeof(void *));
        changed++;
    }
    free(before);
    // The probe's own malloc state is left to it: a few hundred bytes, once.
    if (changed == 0 || changed > MALLOC_WORDS_MAX) {
        preload_log("glibc's malloc state stays per fiber thread: a first malloc changed %d words", changed);
        return;
    }
    malloc_word_count = changed;
    preload_log("fiber threads share their hub thread's malloc cache (%d words of libc's TLS)", changed);
}

/// Clear a finished thread's descriptor for the next thread but for the
/// ranges nobody writes (zero since the block was first made). glibc's own
/// pthread_setspecific can still be reached past the library's (dlsym of
/// libc's, a library loaded with RTLD_DEEPBIND, the old
/// __pthread_setspecific): it sets specific_used, right after the key
/// arrays, and then those are cleared too, and the second-level arrays it
/// allocated freed (as glibc's thread exit would).
static void clear_written(char *pd) {
    bool keys_used = glibc.keep[1][1] && *(bool *)(pd + glibc.keep[1][1]);
    if (keys_used) {
        void **level2 = (void **)(void *)(pd + glibc.keep[1][1] - 32 * sizeof(void *));
        for (int i = 1; i < 32; i++) free(level2[i]);
    }
    size_t at = 0;
    for (int r = 0; r < 3; r++) {
        size_t from = glibc.keep[r][0], to = glibc.keep[r][1];
        if (from >= to || (r == 1 && keys_used)) continue;
        memset(pd + at, 0, from - at);
        at = to;
    }
    memset(pd + at, 0, glibc.descriptor - at);
}

/// The block at `mem` (thread_block_size() bytes, aligned: the top of the
/// thread's stack), set up as glibc sets up a new thread's; `leftover`: what
/// the stack's last owner left (green_fiber_leave_in_stack): this block's
/// thread pointer when a thread that ended left its block here.
gthread *thread_block_create_at(void *mem, void *hub_tp, uintptr_t leftover) {
    char *tp = (char *)mem + tp_offset(), *pd = descriptor_of(tp);
    gthread *t = record_of(pd);
    // The descriptor, the TCB and the record start zeroed, as glibc's; the
    // TLS blocks get their images from _dl_allocate_tls (the surplus is
    // written only by a later dlopen: see thread_block_dlopened).
    if (leftover == (uintptr_t)tp) clear_written(pd);
    else memset(pd, 0, glibc.descriptor);
#if defined(__aarch64__)
    memset(tp, 0, 2 * sizeof(void *)); // the TCB: {dtv, private}
#endif
    memset(t, 0, record_size());
    if (!glibc.allocate_tls(tp)) return NULL; // the DTV and every module's initial TLS image
    t->tp = tp;

#if defined(__x86_64__)
    // tcbhead_t (x86_64 ABI offsets): tcb and self point at the descriptor;
    // sysinfo, the stack-protector canary, the pointer guard and the CET
    // feature bits are the process's, as glibc copies them.
    char *now = (char *)__builtin_thread_pointer();
    *(void **)(pd + 0) = pd;
    *(void **)(pd + 16) = pd;
    *(int *)(pd + 24) = 1;                  // multiple_threads
    memcpy(pd + 32, now + 32, 3 * sizeof(uintptr_t)); // sysinfo, stack_guard, pointer_guard
    memcpy(pd + 72, now + 72, sizeof(unsigned)); // feature_1
#else
    // aarch64 keeps the canary and the pointer guard in globals; the
    // descriptor's header is {multiple_threads, gscope_flag}.
    *(int *)(pd + 0) = 1;
#endif

    // The descriptor proper. tid: its hub's OS thread's, so glibc's own locks
    // and raise() act on the thread that runs the fiber (gettid() is the
    // program's view, and says the fiber thread's own id).
    char *hub = descriptor_of(hub_tp);
    *(pid_t *)(pd + glibc.tid) = *(pid_t *)(hub + glibc.tid);
    *(void **)(pd + glibc.list) = pd + glibc.list; // an empty list: unlinking it is harmless
    *(void **)(pd + glibc.list + 8) = pd + glibc.list;
    *(void **)(pd + glibc.robust_prev) = pd + glibc.robust_head;
    *(void **)(pd + glibc.robust_head) = pd + glibc.robust_head;
    *(long *)(pd + glibc.robust_head + 8) = glibc.robust_futex_offset;
    *(void **)(pd + glibc.start_routine) = (void *)fiber_thread_start;
    if (glibc.rseq != NO_RSEQ) *(int32_t *)(tp + glibc.rseq + 4) = -2; // cpu_id: registration failed, ask the kernel
    for (int i = 0; i < malloc_word_count; i++) // the hub thread's malloc cache and arena (offsets from the thread pointer)
        *(void **)(tp + malloc_words[i]) = *(void **)((char *)hub_tp + malloc_words[i]);
    return t;
}


void thread_block_rehome(gthread *t, void *hub_tp) {
    char *tp = t->tp, *hub = hub_tp;
    *(pid_t *)(descriptor_of(tp) + glibc.tid) = *(pid_t *)(descriptor_of(hub) + glibc.tid);
    for (int i = 0; i < malloc_word_count; i++) *(void **)(tp + malloc_words[i]) = *(void **)(hub + malloc_words[i]);
}

void thread_block_set_tid(void *tp, pid_t tid) {
    if (glibc.enabled && tp) *(pid_t *)(descriptor_of(tp) + glibc.tid) = tid;
}

char *thread_block_descriptor(void *tp) { return descriptor_of(tp); }

void *thread_block_robust_head(void) {
    // (Only in fiber mode is the layout learned: GREEN_THREADS=native never enables it.)
    return glibc.enabled ? (char *)PREAL(pthread_self)() + glibc.robust_head : NULL;
}

void thread_block_enter(void) {
    if (glibc.enabled) glibc.ctype_init(); // as glibc's start_thread: the locale's ctype tables
}

void thread_block_run_tls_destructors(void) {
    glibc.call_tls_dtors(); // C++ thread_local and Rust thread_local! destructors, newest first
}

void thread_block_after_fork_in_child(void) {
    // glibc's fork registered the forking fiber's descriptor with the kernel
    // (tid to clear, robust list), but that block is freed when the fiber
    // thread ends: give both back to the hub thread's own descriptor.
    char *hub_tp = green_sched_native_thread_pointer(green_sched_current());
    if (!glibc.enabled || !hub_tp) return;
    char *hub = descriptor_of(hub_tp);
    *(pid_t *)(hub + glibc.tid) = (pid_t)GREEN_SYSCALL(SYS_set_tid_address, hub + glibc.tid);
    GREEN_SYSCALL(SYS_set_robust_list, hub + glibc.robust_head, (size_t)24);
    // glibc's fork also put the forking descriptor on its list of thread
    // stacks in use (its reclaim_stacks): that descriptor lives on the fiber's
    // stack, which is reused when the thread ends, so it leaves the list
    // (list_t {next, prev}: list_del, then an empty list of its own again).
    void **node = (void **)(void *)(descriptor_of(__builtin_thread_pointer()) + glibc.list);
    void **next = node[0], **prev = node[1];
    if (next && prev && next != (void *)node) {
        prev[0] = next;
        next[1] = prev;
        node[0] = node[1] = node;
    }
}

// ---- glibc's set*id across threads (setuid, setgid, setgroups…) --------------------
//
// With more than one thread, glibc's setgid marks each descriptor on its
// thread lists (the OS threads' own: hubs, the watcher, spares), sends its
// tid SIGSETXID, and signals again, round after round, until every mark is
// gone. Its handler makes the system call on the thread it lands on and
// clears the mark in THREAD_SELF, which on a hub's OS thread running a fiber
// thread is that fiber thread's descriptor, not the OS thread's own, which
// stays marked. A fiber thread calling setgid on a hub that glibc lists
// signals its own OS thread, where its own descriptor is loaded every time:
// glibc signalled it for ever (a fork child's thread that had moved to the
// child's second hub spun in setgid). The handler runs with the OS thread's
// own descriptor loaded, the one glibc marked (its tid is this thread's).
//
// The watcher's preemption signals (preempt.c) are SIGSETXID too, queued
// with a tag: a real-time signal, so that two never merge into one, and
// glibc's, so that the program can neither handle nor block it (glibc's
// sigaction and sigprocmask refuse it) and none of the
// program's own signals is taken or changed. glibc's handler ignores a
// SIGSETXID that is not its own, so one sent before the library's handler
// is in place is only a preemption missed.

#define SIGSETXID 33 // glibc's internal signal (SIGRTMIN + 1)

/// The kernel's struct sigaction: the handler comes first; the rest is kept as read.
typedef struct kernel_sigaction {
    void (*handler)(int, siginfo_t *, void *);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
} kernel_sigaction;

static void (*glibc_setxid_handler)(int, siginfo_t *, void *);
static _Atomic int setxid_taken; ///< the library's handler is the kernel's for SIGSETXID

/// A call of its own, made after the thread pointer was swapped (as
/// signals.c's call_on_loaded_tls).
static __attribute__((noinline)) void call_glibc_setxid(int sig, siginfo_t *info, void *context) {
    glibc_setxid_handler(sig, info, context);
}

static void setxid_on_own_descriptor(int sig, siginfo_t *info, void *context) {
    if (preempt_on_signal(info, context)) return;
    green_sched *s = green_sched_current();
    char *native = s && glibc.enabled ? green_sched_native_thread_pointer(s) : NULL;
    // Not when the hub's descriptor names another OS thread (this one is in
    // a call whose hub a spare runs now): glibc signals it again later.
    if (native && *(pid_t *)(descriptor_of(native) + glibc.tid) != (pid_t)GREEN_SYSCALL(SYS_gettid)) native = NULL;
    void *before = native ? green_thread_pointer_swap(native) : NULL;
    call_glibc_setxid(sig, info, context);
    if (native) green_thread_pointer_swap(before);
}

void thread_block_wrap_setxid(void) {
    // glibc installs its handler with its first thread (pthread_create's
    // late_init): looked at after each OS thread the library makes.
    if (__atomic_load_n(&glibc_setxid_handler, __ATOMIC_ACQUIRE)) return; // wrapped already: glibc installs it once
    kernel_sigaction now;
    if (GREEN_SYSCALL(SYS_rt_sigaction, SIGSETXID, NULL, &now, _NSIG / 8) != 0) return;
    if (now.handler == setxid_on_own_descriptor || !(now.flags & SA_SIGINFO) ||
        (void *)now.handler == (void *)SIG_DFL || (void *)now.handler == (void *)SIG_IGN)
        return;
    __atomic_store_n(&glibc_setxid_handler, now.handler, __ATOMIC_RELEASE);
    now.handler = setxid_on_own_descriptor;
    // On the stack it interrupted, not an alternate one: a preempted fiber
    // switches away from inside the handler. NODEFER: the next one may come
    // while another fiber runs from inside it.
    now.flags = (now.flags & ~(unsigned long)SA_ONSTACK) | SA_NODEFER;
    if (GREEN_SYSCALL(SYS_rt_sigaction, SIGSETXID, &now, NULL, _NSIG / 8) == 0) atomic_store(&setxid_taken, 1);
}

int thread_block_setxid_wrapped(void) { return atomic_load(&setxid_taken); }

void thread_block_free(gthread *t) {
    glibc.deallocate_tls(t->tp, false); // the DTV and the TLS of modules dlopen'ed later
    green_fiber_leave_in_stack(t->fiber, (uintptr_t)t->tp); // the rest stays, for the next thread on the stack
}

// ---- libraries dlopen'ed later with static TLS --------------------------------------
//
// A library built with initial-exec TLS gets a place in every thread's static
// TLS when dlopen loads it, and glibc copies its initial image into each
// thread it knows (not fiber threads). dlopen is interposed only to note it:
// it tail-calls libc's, so that glibc still sees the program's code as the
// caller (whose RUNPATH and namespace the search uses); the copy into each
// fiber thread is made at the next fiber switch, before any other fiber
// thread can run the library's code, or at the caller's next dlsym if that
// comes first: the thread that called dlopen runs on, and finds the library's
// code with dlsym before it can run it. (Only a constructor of the library
// that reads its own initial-exec TLS runs before either.)

#define STATIC_MODULES_MAX 64
typedef struct static_module {
    size_t modid, offset;
    uintptr_t base; ///< load address: a library loaded again after dlclose is a new one
} static_module;
static static_module done[STATIC_MODULES_MAX]; ///< in every fiber thread's block already
static int ndone;

typedef struct new_module {
    static_module m;
    const char *image;
    size_t filesz, memsz;
} new_module;

static int is_done(const static_module *m) {
    for (int i = 0; i < ndone; i++)
        if (done[i].modid == m->modid && done[i].offset == m->offset && done[i].base == m->base) return 1;
    return 0;
}

/// The static TLS offset of the loaded object at `base` with module id `modid` (0: dynamic).
static size_t static_offset_of(uintptr_t base, size_t modid) {
    for (struct link_map *l = _r_debug.r_map; l; l = l->l_next) {
        if ((uintptr_t)l->l_addr != base || *(size_t *)((char *)l + link_map_modid) != modid) continue;
        size_t off = *(size_t *)((char *)l + link_map_tls_offset);
        return off >= (size_t)-2 ? 0 : off; // -1, -2: none, or forced dynamic (glibc's values differ by variant)
    }
    return 0;
}

static void init_in_block(gthread *t, void *arg) {
    const new_module *n = arg;
#if defined(__x86_64__)
    char *dest = (char *)t->tp - n->m.offset; // below the thread pointer
#else
    char *dest = (char *)t->tp + n->m.offset; // above it
#endif
    memcpy(dest, n->image, n->filesz);
    memset(dest + n->filesz, 0, n->memsz - n->filesz);
}

static int find_new_static(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    (void)data;
    if (!info->dlpi_tls_modid) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS) continue;
        new_module n = {{info->dlpi_tls_modid, 0, info->dlpi_addr}, (const char *)(info->dlpi_addr + ph->p_vaddr),
                        ph->p_filesz, ph->p_memsz};
        n.m.offset = static_offset_of(n.m.base, n.m.modid);
        if (!n.m.offset || is_done(&n.m)) return 0;
        // Another thread's dlopen may be loading it now: glibc tells
        // _dl_find_object of a library once it is relocated (its TLS image
        // too); until then it is left for that thread's own copy.
        struct dl_find_object found;
        if (data && _dl_find_object((void *)n.image, &found) != 0) {
            ++*(int *)data;
            return 0;
        }
        if (ndone < STATIC_MODULES_MAX) done[ndone++] = n.m;
        if (!data) continue; // the initial set: in every block from the start
        gthread_for_each_live(init_in_block, &n);
        preload_log("static TLS of %s (%zu bytes) copied into every fiber thread", info->dlpi_name, (size_t)ph->p_memsz);
    }
    return 0;
}

/// New static-TLS libraries into every block.
/// New static-TLS libraries into every block; the number left for their
/// loaders (not yet relocated: see find_new_static).
static int copy_new_static_tls(void) {
    int left = 0;
    dl_iterate_phdr(find_new_static, &left);
    return left;
}

/// The fibers whose dlopen has not been followed by their copy yet (a slot
/// each; NULL: free). With every slot taken, or a dlopen off any fiber, the
/// next switch of any fiber copies (`anyone`).
#define LOADERS_MAX 16
static green_fiber *_Atomic loaders[LOADERS_MAX];
static _Atomic int anyone;

static int copies_due(void) {
    for (int i = 0; i < LOADERS_MAX; i++)
        if (atomic_load(&loaders[i])) return 1;
    return atomic_load(&anyone);
}

/// After a dlopen, at a fiber switch or a dlsym: the copy, made by a fiber
/// that called dlopen. It never parks inside dlopen, so by then its library
/// is loaded and relocated; a switch on another hub may come while it is
/// half loaded, and leaves the hook set. The hook goes when no copy is due:
/// cleared, then looked at again, so that a dlopen that noted itself
/// meanwhile keeps it.
static void copy_after_dlopen(void) {
    green_fiber *self = green_fiber_current();
    int mine = 0;
    for (int i = 0; i < LOADERS_MAX && self; i++) {
        green_fiber *f = self;
        if (atomic_load(&loaders[i]) == self && atomic_compare_exchange_strong(&loaders[i], &f, NULL)) mine = 1;
    }
    if (!mine && !atomic_exchange(&anyone, 0)) return;
    int left = copy_new_static_tls();
    if (left && !mine) atomic_store(&anyone, 1); // a library still loading off any fiber: look again
    if (!copies_due()) {
        void (*hook)(void) = copy_after_dlopen;
        atomic_compare_exchange_strong(&green_next_switch_hook, &hook, NULL);
        if (copies_due()) atomic_store(&green_next_switch_hook, copy_after_dlopen);
    }
}

static void *(*libc_dlopen)(const char *, int);

/// Note the calling fiber (once) as one whose copy is due.
static void note_loader(void) {
    green_fiber *self = green_fiber_current();
    for (int i = 0; i < LOADERS_MAX && self; i++)
        if (atomic_load(&loaders[i]) == self) return;
    for (int i = 0; i < LOADERS_MAX && self; i++) {
        green_fiber *none = NULL;
        if (atomic_compare_exchange_strong(&loaders[i], &none, self)) return;
    }
    atomic_store(&anyone, 1);
}

GREEN_EXPORT void *dlopen(const char *file, int mode) {
    if (!libc_dlopen) libc_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    if (glibc.enabled && link_map_tls_offset >= 0) {
        note_loader();
        atomic_store(&green_next_switch_hook, copy_after_dlopen);
    }
    __attribute__((musttail)) return libc_dlopen(file, mode);
}

void thread_block_forget_loaders(void) {
    // A fork child keeps the forking thread alone: the others' copies are
    // not due here, and one of its own (or a library another thread had
    // finished loading) is made now.
    if (atomic_load(&green_next_switch_hook) != copy_after_dlopen) return;
    for (int i = 0; i < LOADERS_MAX; i++) atomic_store(&loaders[i], NULL);
    atomic_store(&anyone, 0);
    atomic_store(&green_next_switch_hook, NULL);
    copy_new_static_tls();
}

static void *(*libc_dlsym)(void *, const char *);

/// Interposed only to make a pending copy on the hub's thread (where the
/// blocks and `done` belong); it tail-calls libc's, so that RTLD_NEXT and
/// RTLD_DEFAULT still mean what they mean for the caller.
GREEN_EXPORT void *dlsym(void *handle, const char *name) {
    if (!libc_dlsym) libc_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!libc_dlsym) libc_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    if (!libc_dlsym) libc_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.17"); // aarch64
    if (__builtin_expect(atomic_load_explicit(&green_next_switch_hook, memory_order_relaxed) == copy_after_dlopen, 0) &&
        green_fiber_current())
        copy_after_dlopen();
    __attribute__((musttail)) return libc_dlsym(handle, name);
}

gthread *thread_block_owner(pthread_t th) {
    char *pd = (char *)th;
    if (!pd || *(void **)(pd + glibc.start_routine) != (void *)fiber_thread_start) return NULL;
    return record_of(pd);
}
