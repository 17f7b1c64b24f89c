// fd_generations.c — which file an fd number names, as far as the hubs can
// tell: a counter per number, bumped twice whenever the shim sees the number
// let go of its file (close, dup2 onto it, close_range, fclose…): odd from
// just before the close to just after it, so that a registration made while
// the number changes hands is never trusted.
//
// Why: a hub keeps an fd registered with its kernel epoll set between
// waits, and libev re-registers a number only when told that the number may
// name another file (EV__IOFDSET). Re-registering at every wait cost one
// epoll_ctl per wait. A hub now records the generation under which it last
// registered each number and asks for a new registration only when the
// generation moved — from any thread, any hub. (epoll itself drops a
// registration when the file's last reference closes; what it cannot know
// is that a *new* file took the number, which is exactly what this tells.)
#include "internal.h"
#include <stdatomic.h>
#include <stdlib.h>

#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 1024 // 4 M fds, as the shim's fd table

static _Atomic(_Atomic uint32_t *) chunks[MAX_CHUNKS];

static _Atomic uint32_t *chunk_of(unsigned fd, bool create) {
    unsigned c = fd >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) return NULL;
    _Atomic uint32_t *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
    if (chunk || !create) return chunk;
    _Atomic uint32_t *fresh = calloc(CHUNK_SIZE, sizeof *fresh);
    if (!fresh) return NULL;
    _Atomic uint32_t *expected = NULL;
    if (atomic_compare_exchange_strong(&chunks[c], &expected, fresh)) return fresh;
    free(fresh);
    return expected;
}

bool fd_generation_get(int fd, uint32_t *gen) {
    if (fd < 0) return false;
    _Atomic uint32_t *chunk = chunk_of((unsigned)fd, true);
    if (!chunk) return false;
    *gen = atomic_load_explicit(&chunk[(unsigned)fd & (CHUNK_SIZE - 1)], memory_order_acquire);
    return (*gen & 1) == 0; // odd: being closed right now
}

void fd_generation_bump(int fd) {
    if (fd < 0) return;
    // No chunk: no hub ever registered a number of it, so none can be stale.
    _Atomic uint32_t *chunk = chunk_of((unsigned)fd, false);
    if (chunk) atomic_fetch_add_explicit(&chunk[(unsigned)fd & (CHUNK_SIZE - 1)], 1, memory_order_release);
}

void fd_generation_bump_range(unsigned first, unsigned last) {
    for (unsigned c = first >> CHUNK_BITS; c < MAX_CHUNKS && c <= (last >> CHUNK_BITS); c++) {
        _Atomic uint32_t *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
        if (!chunk) continue;
        unsigned lo = c == (first >> CHUNK_BITS) ? (first & (CHUNK_SIZE - 1)) : 0;
        unsigned hi = c == (last >> CHUNK_BITS) ? (last & (CHUNK_SIZE - 1)) : CHUNK_SIZE - 1;
        for (unsigned i = lo; i <= hi; i++) atomic_fetch_add_explicit(&chunk[i], 1, memory_order_release);
    }
}
