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
// when it ends, and the closes in progress (bits 0-7); plus, for a range
// close (close_range, closefrom), the generation of one word shared by all
// numbers (fd_generation_range_word). While any is in
// progress the number is trusted by nobody, so a registration made while
// the number changes hands is never reused; a close that never ends (its
// thread cancelled inside it) leaves the number untrusted, which only costs
// an epoll_ctl per wait there.
#include "internal.h"
#include <stdatomic.h>
#include <sys/mman.h>

#define CHUNK_BITS FD_GENERATION_CHUNK_BITS
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS FD_GENERATION_MAX_CHUNKS

#define IN_PROGRESS_MASK FD_GENERATION_IN_PROGRESS_MASK
#define GENERATION_STEP 0x100u

// fd_entry (a number's word and its hubs) is in internal.h, with the
// inline fd_generation_get.
_Atomic(fd_entry *) fd_generation_chunks[FD_GENERATION_MAX_CHUNKS];

/// Chunk c, made now (another thread may make it at the same time: one
/// wins). mmap, not malloc: close() makes it too, and may run in a signal
/// handler. Out of line: every wait reads a word, a chunk is made once.
__attribute__((noinline, cold)) static fd_entry *make_chunk(unsigned c) {
    size_t size = CHUNK_SIZE * sizeof(fd_entry);
    void *fresh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED) return NULL;
    fd_entry *expected = NULL;
    if (atomic_compare_exchange_strong(&fd_generation_chunks[c], &expected, (fd_entry *)fresh)) return fresh;
    munmap(fresh, size);
    return expected;
}

/// The entry of fd, its chunk made on first use when `create`.
static inline fd_entry *entry_of(unsigned fd, bool create) {
    unsigned c = fd >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) return NULL;
    fd_entry *chunk = atomic_load_explicit(&fd_generation_chunks[c], memory_order_acquire);
    if (__builtin_expect(!chunk, 0) && create) chunk = make_chunk(c);
    return chunk ? &chunk[fd & (CHUNK_SIZE - 1)] : NULL;
}

/// The word of every number at once, for range closes (close_range,
/// closefrom): closes in progress in bits 0-15, a generation above, bumped
/// when a range close begins and when it ends. A range may reach numbers
/// whose chunk does not exist yet, and a chunk made while the range closes
/// would see only half of it; one word for all numbers has no such race.
/// Range closes are rare (a child before exec, a daemon at start), so that
/// every hub registering each waited-on number anew after one costs little.
_Atomic uint64_t fd_generation_range_word;
#define RANGE_IN_PROGRESS_MASK FD_GENERATION_RANGE_IN_PROGRESS_MASK
#define RANGE_STEP FD_GENERATION_RANGE_STEP
#define RANGE_SHIFT FD_GENERATION_RANGE_SHIFT

bool fd_generation_get_slow(int fd, uint64_t range, uint64_t *word) {
    *word = (range / RANGE_STEP) << RANGE_SHIFT;
    fd_entry *e = fd >= 0 ? entry_of((unsigned)fd, true) : NULL;
    if (!e) return false; // never counted: nobody can tell its closes
    uint64_t own = atomic_load_explicit(&e->word, memory_order_seq_cst); // after fd_hubs_add's or: see there
    *word += own;
    return (own & IN_PROGRESS_MASK) == 0 && (range & RANGE_IN_PROGRESS_MASK) == 0;
}

void fd_generation_closing(unsigned first, unsigned last) {
    if (first > last) return;
    if (first < last) {
        atomic_fetch_add_explicit(&fd_generation_range_word, RANGE_STEP + 1, memory_order_acq_rel);
        return;
    }
    fd_entry *e = entry_of(first, true);
    if (e) atomic_fetch_add_explicit(&e->word, GENERATION_STEP + 1, memory_order_seq_cst);
}

void fd_generation_closed(unsigned first, unsigned last) {
    // One fewer close in progress, and a new generation: STEP - 1.
    if (first > last) return;
    if (first < last) {
        atomic_fetch_add_explicit(&fd_generation_range_word, RANGE_STEP - 1, memory_order_acq_rel);
        return;
    }
    // The chunk exists unless closing() could not make it (then neither can this).
    fd_entry *e = entry_of(first, false);
    if (e) atomic_fetch_add_explicit(&e->word, GENERATION_STEP - 1, memory_order_seq_cst);
}

void fd_generation_moved(int fd) {
    fd_entry *e = fd >= 0 ? entry_of((unsigned)fd, false) : NULL;
    if (e) atomic_fetch_add_explicit(&e->word, 2 * GENERATION_STEP, memory_order_seq_cst);
}

void fd_generation_undo_closing(unsigned fd) {
    fd_entry *e = entry_of(fd, false);
    if (e) atomic_fetch_sub_explicit(&e->word, GENERATION_STEP + 1, memory_order_seq_cst);
}

void fd_hubs_each_waited(unsigned first, unsigned last, void (*tell)(int fd)) {
    for (unsigned c = first >> CHUNK_BITS; c < MAX_CHUNKS && c <= (last >> CHUNK_BITS); c++) {
        fd_entry *chunk = atomic_load_explicit(&fd_generation_chunks[c], memory_order_acquire);
        if (!chunk) continue;
        unsigned lo = c == (first >> CHUNK_BITS) ? (first & (CHUNK_SIZE - 1)) : 0;
        unsigned hi = c == (last >> CHUNK_BITS) ? (last & (CHUNK_SIZE - 1)) : CHUNK_SIZE - 1;
        for (unsigned i = lo; i <= hi; i++)
            if (atomic_load_explicit(&chunk[i].hubs, memory_order_seq_cst)) tell((int)((c << CHUNK_BITS) | i));
    }
}

uint64_t fd_generation_own_part(uint64_t word) { return word & ((UINT64_C(1) << RANGE_SHIFT) - 1); }

// A hub sets its bit before it reads the number's word for a wait, and a
// close reads the bits after its last bump of the word (both sequentially
// consistent): a wait that read the word from before the close is then
// always among the hubs the close tells.

void fd_hubs_add(int fd, uint64_t bit) {
    fd_entry *e = fd >= 0 ? entry_of((unsigned)fd, true) : NULL;
    if (e && !(atomic_load_explicit(&e->hubs, memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(&e->hubs, bit, memory_order_seq_cst);
}

void fd_hubs_remove(int fd, uint64_t bit) {
    fd_entry *e = fd >= 0 ? entry_of((unsigned)fd, false) : NULL;
    if (e && (atomic_load_explicit(&e->hubs, memory_order_relaxed) & bit))
        atomic_fetch_and_explicit(&e->hubs, ~bit, memory_order_relaxed);
}

void fd_hubs_clear_all(void) {
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        fd_entry *chunk = atomic_load_explicit(&fd_generation_chunks[c], memory_order_acquire);
        if (!chunk) continue;
        for (unsigned i = 0; i < CHUNK_SIZE; i++) atomic_store_explicit(&chunk[i].hubs, 0, memory_order_relaxed);
    }
}

uint64_t fd_hubs_waiting(int fd) {
    fd_entry *e = fd >= 0 ? entry_of((unsigned)fd, false) : NULL;
    return e ? atomic_load_explicit(&e->hubs, memory_order_seq_cst) : 0;
}
