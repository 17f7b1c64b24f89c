// stack.c — fiber stacks: carved many at a time out of one mapping, each with
// a guard region below it, and recycled through a per-thread pool.
//
// Guard regions use madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which costs no
// VMA: an mprotect'ed guard splits the mapping into two VMAs per stack, and
// the default vm.max_map_count (65,530) would stop us near 32,000 fibers. On
// older kernels we fall back to mprotect while the map budget lasts, then to
// unguarded stacks, saying so once on stderr.
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define STACKS_PER_SLAB 64
#define STACK_GRANULE (16u * 1024u)

enum guard_mode { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT, GUARD_NONE };
static _Atomic int guard_mode = GUARD_UNKNOWN;
static _Atomic long mprotect_budget = -1;

static long read_max_map_count(void) {
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1) v = 65530;
        fclose(f);
    }
    return v;
}

static void install_guard(char *guard) {
    int mode = guard_mode;
    if (mode == GUARD_UNKNOWN || mode == GUARD_MADVISE) {
        if (madvise(guard, GREEN_GUARD_SIZE, MADV_GUARD_INSTALL) == 0) {
            guard_mode = GUARD_MADVISE;
            return;
        }
        if (mode == GUARD_MADVISE) return; // worked before: transient failure, leave unguarded
        guard_mode = mode = GUARD_MPROTECT;
        // Each mprotect'ed guard costs two map entries; keep a third of the
        // kernel's limit for everything else in the process.
        mprotect_budget = (read_max_map_count() * 2 / 3) / 2;
    }
    if (mode == GUARD_MPROTECT) {
        if (mprotect_budget-- > 0 && mprotect(guard, GREEN_GUARD_SIZE, PROT_NONE) == 0) return;
        guard_mode = GUARD_NONE;
        static const char msg[] =
            "green: this kernel lacks MADV_GUARD_INSTALL (Linux 6.13+) and the "
            "vm.max_map_count budget for mprotect guard pages is spent; new fiber "
            "stacks have no guard page, so a stack overflow may corrupt memory "
            "instead of being reported. Raise vm.max_map_count to keep guards.\n";
        ssize_t unused = write(2, msg, sizeof msg - 1);
        (void)unused;
    }
}

static size_t page_size(void) {
    static size_t ps;
    if (!ps) ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

/// Round up to the 16 KiB granule, or the page size if larger (so every
/// stack and guard stays page-aligned on 16/64 KiB-page kernels too).
static size_t round_size(size_t size) {
    size_t granule = page_size() > STACK_GRANULE ? page_size() : STACK_GRANULE;
    if (size < granule) size = granule;
    return (size + granule - 1) & ~(granule - 1);
}

// Under AddressSanitizer, LeakSanitizer must scan fiber stacks: a parked
// fiber's frames hold references it would otherwise report as leaks.
#if defined(__SANITIZE_ADDRESS__)
#define GREEN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GREEN_ASAN 1
#endif
#endif
#ifdef GREEN_ASAN
void __lsan_register_root_region(const void *p, size_t size);
void __lsan_unregister_root_region(const void *p, size_t size);
#define LSAN_ROOT(lo, hi) __lsan_register_root_region((lo), (size_t)((hi) - (lo)))
#define LSAN_UNROOT(lo, hi) __lsan_unregister_root_region((lo), (size_t)((hi) - (lo)))
#else
#define LSAN_ROOT(lo, hi) ((void)0)
#define LSAN_UNROOT(lo, hi) ((void)0)
#endif

static int push(green_stack **v, size_t *n, size_t *cap, const green_stack *st) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        green_stack *nv = realloc(*v, ncap * sizeof **v);
        if (!nv) return -1;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = *st;
    return 0;
}

static int map_alone(size_t size, green_stack *out) {
    size_t total = size + GREEN_GUARD_SIZE;
    char *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) return -1;
    install_guard(m);
    out->guard = m;
    out->lo = m + GREEN_GUARD_SIZE;
    out->hi = m + total;
    out->cls = ~0u;
    out->home = NULL;
    out->leftover = 0;
    LSAN_ROOT(out->lo, out->hi);
    return 0;
}

static green_stack_class *find_class(green_stack_pool *p, size_t size, unsigned *index) {
    for (unsigned i = 0; i < p->nclasses; i++)
        if (p->cls[i].size == size) { *index = i; return &p->cls[i]; }
    if (p->nclasses == GREEN_STACK_CLASSES) return NULL;
    *index = p->nclasses;
    green_stack_class *c = &p->cls[p->nclasses++];
    memset(c, 0, sizeof *c);
    c->size = size;
    return c;
}

/// A stack handed back by another thread: the record sits at its top, where
/// the dead fiber's own record was.
struct green_returned_stack {
    green_stack stack;
    green_returned_stack *next;
};

static void take_returned(green_stack_pool *p) {
    green_returned_stack *r = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
    while (r) {
        green_returned_stack *next = r->next;
        green_stack st = r->stack; // r lives in the stack: copy before it is reused
        green_stack_free(p, &st);
        r = next;
    }
}

/// green_stack_release's own path (internal.h), for all but a stack of this
/// pool's with room on its free list.
void green_stack_release_slow(green_stack_pool *here, const green_stack *st) {
    green_stack_pool *home = st->home;
    if (home == here || !home) {
        green_stack_free(here, st);
        return;
    }
    green_returned_stack *r = (green_returned_stack *)(st->hi - ((sizeof *r + 63) & ~(size_t)63));
    r->stack = *st;
    r->next = atomic_load_explicit(&home->returned, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&home->returned, &r->next, r, memory_order_release,
                                                  memory_order_relaxed)) {
    }
}

/// The most recently freed stack of class c (its pages most likely still in
/// the cache), else a clean one; the caller knows one is there.
static void take_free(green_stack_class *c, green_stack *out) {
    if (c->ndirty) *out = c->dirty[--c->ndirty];
    else *out = c->clean[--c->nclean];
}

/// A new stack carved from the class's current slab (a new slab when it is used up).
static int carve(green_stack_pool *p, green_stack_class *c, unsigned idx, size_t size, green_stack *out) {
    size_t stride = size + GREEN_GUARD_SIZE;
    if (!c->slab_left) {
        char *m = mmap(NULL, stride * STACKS_PER_SLAB, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m == MAP_FAILED) return -1;
        if (p->nslabs == p->capslabs) {
            size_t ncap = p->capslabs ? p->capslabs * 2 : 16;
            green_slab *ns = realloc(p->slabs, ncap * sizeof *ns);
            if (!ns) { munmap(m, stride * STACKS_PER_SLAB); return -1; }
            p->slabs = ns;
            p->capslabs = ncap;
        }
        p->slabs[p->nslabs++] = (green_slab){m, stride * STACKS_PER_SLAB};
        c->slab_next = m;
        c->slab_left = STACKS_PER_SLAB;
    }
    char *g = c->slab_next;
    c->slab_next += stride;
    c->slab_left--;
    p->carved++;
    install_guard(g);
    out->guard = g;
    out->lo = g + GREEN_GUARD_SIZE;
    out->hi = g + stride;
    out->cls = idx;
    out->home = p;
    out->leftover = 0;
    LSAN_ROOT(out->lo, out->hi);
    return 0;
}

int green_stack_alloc(green_stack_pool *p, size_t size, green_stack *out) {
    if (__builtin_expect(atomic_load_explicit(&p->returned, memory_order_relaxed) != NULL, 0)) take_returned(p);
    size = round_size(size);
    unsigned idx;
    green_stack_class *c = find_class(p, size, &idx);
    if (!c) return map_alone(size, out); // too many distinct sizes: no pooling
    if (c->ndirty + c->nclean > c->promised) { // free stacks beyond those promised
        take_free(c, out);
        return 0;
    }
    return carve(p, c, idx, size, out);
}

int green_stack_promise(green_stack_pool *p, size_t size, unsigned *cls) {
    if (__builtin_expect(atomic_load_explicit(&p->returned, memory_order_relaxed) != NULL, 0)) take_returned(p);
    unsigned idx;
    green_stack_class *c;
    if (size == p->last_asked && p->last_asked) { // most spawns ask for the size the last one did
        idx = p->last_cls;
        c = &p->cls[idx];
    } else {
        c = find_class(p, round_size(size), &idx);
        if (!c) return -1;
        p->last_asked = size;
        p->last_cls = idx;
    }
    size = c->size;
    if (c->ndirty + c->nclean <= c->promised) {
        // None spare: carve one now (here it may fail, not at the fiber's
        // first run), free with pages never touched: a clean one.
        green_stack st;
        if (carve(p, c, idx, size, &st) != 0) return -1;
        if (push(&c->clean, &c->nclean, &c->capclean, &st) != 0) return -1; // out of memory: the range is leaked
    }
    c->promised++;
    *cls = idx;
    return 0;
}

void green_stack_forget_promises(green_stack_pool *p) {
    for (unsigned i = 0; i < p->nclasses; i++) p->cls[i].promised = 0;
}

void green_stack_free(green_stack_pool *p, const green_stack *st) {
    if (st->cls == ~0u) {
        LSAN_UNROOT(st->lo, st->hi);
        munmap(st->guard, (size_t)(st->hi - st->guard));
        return;
    }
    green_stack_class *c = &p->cls[st->cls];
    if (push(&c->dirty, &c->ndirty, &c->capdirty, st) != 0) {
        // Out of memory for the free list: drop the pages, leak the address range.
        madvise(st->lo, (size_t)(st->hi - st->lo), MADV_DONTNEED);
    }
}

void green_stack_trim(green_stack_pool *p, size_t keep, size_t budget) {
    for (unsigned i = 0; i < p->nclasses && budget; i++) {
        green_stack_class *c = &p->cls[i];
        while (c->ndirty > keep && budget) {
            green_stack st = c->dirty[--c->ndirty];
            madvise(st.lo, (size_t)(st.hi - st.lo), MADV_DONTNEED); // (zero pages: a leftover still holds)
            if (push(&c->clean, &c->nclean, &c->capclean, &st) != 0) {
                c->dirty[c->ndirty++] = st; // keep it: promised stacks must stay in the lists
                break;
            }
            budget--;
        }
    }
}

void green_stack_pool_destroy(green_stack_pool *p) {
    take_returned(p);
#ifdef GREEN_ASAN
    // Unregister every stack carved so far (free ones are in the lists; the
    // rest were in use, and a pool is destroyed only when none are).
    for (unsigned i = 0; i < p->nclasses; i++) {
        for (size_t j = 0; j < p->cls[i].ndirty; j++) LSAN_UNROOT(p->cls[i].dirty[j].lo, p->cls[i].dirty[j].hi);
        for (size_t j = 0; j < p->cls[i].nclean; j++) LSAN_UNROOT(p->cls[i].clean[j].lo, p->cls[i].clean[j].hi);
    }
#endif
    for (size_t i = 0; i < p->nslabs; i++) munmap(p->slabs[i].base, p->slabs[i].size);
    for (unsigned i = 0; i < p->nclasses; i++) {
        free(p->cls[i].dirty);
        free(p->cls[i].clean);
    }
    free(p->slabs);
    memset(p, 0, sizeof *p);
}
