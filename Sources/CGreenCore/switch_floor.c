// switch_floor.c — the context switch alone, for green-bench: two contexts
// handing control back and forth with green_ctx_switch and nothing else.
// It is the floor under every fiber switch: Green.yield() adds the
// scheduler's bookkeeping (ready queue, errno, TLS, Swift's exclusivity
// state) to it, and the benchmark prints both in one run.
#include "internal.h"
#include <stdlib.h>

typedef struct {
    void *main_sp;  ///< the caller's context while the other side runs
    void *other_sp; ///< the other side's context while the caller runs
} floor_pair;

/// The other side: gives control straight back, for ever. Its stack is
/// freed with it parked here, never to be resumed.
static void give_back(void *arg) {
    floor_pair *p = arg;
    for (;;) green_ctx_switch(&p->other_sp, p->main_sp);
}

int green_switch_floor(long round_trips) {
    enum { STACK_SIZE = 64 * 1024 };
    char *stack = malloc(STACK_SIZE);
    if (!stack) return -1;
    floor_pair p = {0};
    p.other_sp = green_ctx_make(stack + STACK_SIZE, give_back, &p);
    for (long i = 0; i < round_trips; i++) green_ctx_switch(&p.main_sp, p.other_sp);
    free(stack);
    return 0;
}
