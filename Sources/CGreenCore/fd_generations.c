// fd_generations.c — which file an fd number names, as far as the hubs can
// tell: a word per number that every close the shim sees changes (close,
// dup2 onto it, close_range, fclose…), from just before the close to just
// after it.
//
// Why: a hub keeps an fd registered with its kernel epoll set between
// waits, and libev re-registers a number only when told that the number may
// name another file (EV__IOFDSET). Re-registering at every wait cost one
// epoll_ctl per wait. A hub now records the word under which it last
// registered each number and asks for a new registration only when the
// word moved — from any thread, any hub. (epoll itself drops a registration
// when the file's last reference closes; what it cannot know is that a
// *new* file took the number, which is exactly what this tells.)
//
// The word: a generation (bits 8 and up), bumped when a close begins and
// when it ends, and the closes in progress (bits 0-7). While any is in
// progress the number is trusted by nobody, so a registration made while
// the number changes hands is never reused; a close that never ends (its
// thread cancelled inside it) leaves the number untrusted, which only costs
// an epoll_ctl per wait there.
#include "internal.h"
#include <stdatomic.h>
#include <sys/mman.h>

#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 1024 // 4 M fds, as the shim's fd table

#define IN_PROGRESS_MASK 0xffu
#define GENERATION_STEP 0x100u

static _Atomic(_Atomic uint64_t *) chunks[MAX_CHUNKS];

/// The chunk holding fd's word, made on first use when `create`. mmap, not
/// malloc: close() makes it too, and may run in a signal handler.
static _Atomic uint64_t *chunk_of(unsigned fd, bool create) {
    unsigned c = fd >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) return NULL;
    _Atomic uint64_t *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
    if (chunk || !create) return chunk;
    size_t size = CHUNK_SIZE * sizeof *chunk;
    void *fresh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED) return NULL;
    _Atomic uint64_t *expected = NULL;
    if (atomic_compare_exchange_strong(&chunks[c], &expected, (_Atomic uint64_t *)fresh)) return fresh;
    munmap(fresh, size);
    return expected;
}

bool fd_generation_get(int fd, uint64_t *word) {
    *word = 0;
    if (fd < 0) return false;
    _Atomic uint64_t *chunk = chunk_of((unsigned)fd, true);
    if (!chunk) return false;
    *word = atomic_load_explicit(&chunk[(unsigned)fd & (CHUNK_SIZE - 1)], memory_order_acquire);
    return (*word & IN_PROGRESS_MASK) == 0;
}

/// Apply `delta` to every word of [first, last]. A single number's chunk is
/// made if missing; a range (close_range up to ~0U) touches only the chunks
/// that exist. A chunk made between a close's two steps gets only the
/// second: its in-progress count wraps to 0xff, and the number is never
/// trusted again (safe; one epoll_ctl per wait there).
static void add_range(unsigned first, unsigned last, uint64_t delta) {
    for (unsigned c = first >> CHUNK_BITS; c < MAX_CHUNKS && c <= (last >> CHUNK_BITS); c++) {
        _Atomic uint64_t *chunk = chunk_of(c << CHUNK_BITS, first == last);
        if (!chunk) continue;
        unsigned lo = c == (first >> CHUNK_BITS) ? (first & (CHUNK_SIZE - 1)) : 0;
        unsigned hi = c == (last >> CHUNK_BITS) ? (last & (CHUNK_SIZE - 1)) : CHUNK_SIZE - 1;
        for (unsigned i = lo; i <= hi; i++) atomic_fetch_add_explicit(&chunk[i], delta, memory_order_acq_rel);
    }
}

void fd_generation_closing(unsigned first, unsigned last) {
    if (first <= last) add_range(first, last, GENERATION_STEP + 1);
}

void fd_generation_closed(unsigned first, unsigned last) {
    // One fewer close in progress, and a new generation: GENERATION_STEP - 1.
    if (first <= last) add_range(first, last, GENERATION_STEP - 1);
}
