// exclusivity.c — give every fiber its own Swift exclusivity access set.
//
// Swift's dynamic exclusivity checker keeps a thread-local linked list of
// active accesses whose records live in the accessing frames. Fibers share
// the thread, so without help a fiber parked inside a `modify` leaves its
// record on the list and the next fiber touching the same storage traps
// ("Simultaneous accesses"). Swift concurrency solves the same problem for
// tasks with two exported runtime functions, which we could call on every
// switch; we keep every context symmetric (the thread-wide list is empty
// between a fiber's exit and the next one's entry), so all a switch must do
// is save the list head of the fiber leaving and install the head of the one
// entering.
//
// Fast path: the head lives in libswiftCore's thread-local storage. We find
// its address once per thread by probing (begin an access on a buffer of
// ours, look for that buffer's address in libswiftCore's TLS block, end the
// access, check again with a second buffer). Then a switch is one load and
// two stores instead of two calls that each go through __tls_get_addr.
// If the probe does not find exactly one slot, we fall back to
// swift_task_exit/enterThreadLocalContext, which are semantically the same.
//
// The runtime functions are weak references: a C program preloading Green
// without the Swift runtime simply has no exclusivity checking to manage.
#define _GNU_SOURCE
#include "internal.h" // before <link.h>: its <elf.h> defines EV_NONE, which ev.h uses as a name
#include <link.h>
#include <stdlib.h>
#include <string.h>

extern void swift_task_enterThreadLocalContext(char *state) __attribute__((weak));
extern void swift_task_exitThreadLocalContext(char *state) __attribute__((weak));
extern void swift_beginAccess(void *pointer, void *buffer, uintptr_t flags, void *pc) __attribute__((weak));
extern void swift_endAccess(void *buffer) __attribute__((weak));

enum { ACCESS_MODIFY = 1, ACCESS_TRACKING = 0x20 };

static int hooks_enabled = -1; // GREEN_EXCLUSIVITY_HOOKS=0 turns them off (for tests)
__thread int green_exclusivity_mode __attribute__((tls_model("initial-exec")));
__thread void **green_exclusivity_slot __attribute__((tls_model("initial-exec")));
#define head_slot green_exclusivity_slot
static __thread int head_slot_probed __attribute__((tls_model("initial-exec")));

static int hooks_on(void) {
    if (hooks_enabled < 0) {
        const char *v = getenv("GREEN_EXCLUSIVITY_HOOKS");
        hooks_enabled = swift_task_exitThreadLocalContext && swift_task_enterThreadLocalContext &&
                        !(v && v[0] == '0');
    }
    return hooks_enabled;
}

typedef struct { char *block; size_t size; } tls_block;

static int find_swift_tls(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    tls_block *out = data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libswiftCore.so") || !info->dlpi_tls_data) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            out->block = info->dlpi_tls_data;
            out->size = info->dlpi_phdr[i].p_memsz;
            return 1;
        }
    }
    return 0;
}

/// The slot in `block` holding `value`, if exactly one does.
static void **find_unique(tls_block b, void *value) {
    void **found = NULL;
    for (size_t off = 0; off + sizeof(void *) <= b.size; off += sizeof(void *)) {
        void **p = (void **)(b.block + off);
        if (*p == value) {
            if (found) return NULL;
            found = p;
        }
    }
    return found;
}

static void probe_head_slot(void) {
    head_slot_probed = 1;
    if (!swift_beginAccess || !swift_endAccess || getenv("GREEN_EXCLUSIVITY_SLOW_PATH")) return;
    tls_block b = {0, 0};
    dl_iterate_phdr(find_swift_tls, &b);
    if (!b.block) return;
    static char target1, target2;
    uintptr_t buf1[3], buf2[3];
    swift_beginAccess(&target1, buf1, ACCESS_MODIFY | ACCESS_TRACKING, NULL);
    void **slot = find_unique(b, buf1);
    swift_endAccess(buf1);
    if (!slot) return;
    void *before = *slot;
    swift_beginAccess(&target2, buf2, ACCESS_MODIFY | ACCESS_TRACKING, NULL);
    int ok = *slot == (void *)buf2;
    swift_endAccess(buf2);
    if (ok && *slot == before) head_slot = slot;
}

void green_exclusivity_switch_slow(green_fiber *from, green_fiber *to) {
    if (hooks_enabled == 0 || (hooks_enabled < 0 && !hooks_on())) {
        green_exclusivity_mode = GREEN_EXCLUSIVITY_NONE;
        return;
    }
    if (!head_slot_probed) probe_head_slot();
    void **slot = head_slot;
    if (slot) { // this time, and inline from now on
        green_exclusivity_mode = GREEN_EXCLUSIVITY_SLOT;
        from->exclusivity[0] = (uintptr_t)*slot;
        *slot = (void *)to->exclusivity[0];
        return;
    }
    green_exclusivity_mode = GREEN_EXCLUSIVITY_CALLS;
    swift_task_exitThreadLocalContext((char *)from->exclusivity);
    // With the thread's list now empty, entering a context that saved no
    // accesses changes nothing: skip the call (the common case).
    if (to->exclusivity[0]) swift_task_enterThreadLocalContext((char *)to->exclusivity);
}

void green_exclusivity_off(void) {
    hooks_enabled = 0;
    green_exclusivity_mode = GREEN_EXCLUSIVITY_NONE; // this thread; the others on their first switch
}

bool green_exclusivity_hooks_available(void) {
    return swift_task_exitThreadLocalContext != 0 && swift_task_enterThreadLocalContext != 0;
}

bool green_exclusivity_fast_path(void) {
    if (!head_slot_probed) probe_head_slot();
    return head_slot != NULL;
}
