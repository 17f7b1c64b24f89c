// switch_floor.c — the context switch alone, for green-bench: two contexts
// handing control back and forth with green_ctx_switch and nothing else.
// It is the floor under every fiber switch: Green.yield() adds the
// scheduler's bookkeeping (ready queue, errno, TLS, Swift's exclusivity
// state) to it, and the benchmark prints both in one run.
//
// Two floors: from two call sites (the caller's loop and the other side's),
// as two fibers at different places in their code are, the CPU mispredicts
// each return into the other stack; from one call site (both sides run the
// same loop) it predicts them, and what is left is the switch itself.
//
// Also the C core's spawn + join alone (no Swift fiber object, closure or
// reference counts): what Green.spawn + join costs below its Swift layer.
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
    for (;;) green_ctx_switch(&p->other_sp, p->main_sp, NULL);
}

int green_switch_floor(long round_trips) {
    enum { STACK_SIZE = 64 * 1024 };
    char *stack = malloc(STACK_SIZE);
    if (!stack) return -1;
    floor_pair p = {0};
    p.other_sp = green_ctx_make(stack + STACK_SIZE, give_back, &p);
    for (long i = 0; i < round_trips; i++) green_ctx_switch(&p.main_sp, p.other_sp, NULL);
    free(stack);
    return 0;
}

typedef void *switch_fn(void **save_sp, void *load_sp, void *pass);

typedef struct {
    void *sp[2];    ///< each side's context while the other runs
    void *caller;   ///< the caller's, until both sides are done
    long left;      ///< switches still to make
    switch_fn *sw;  ///< the switch measured
} one_site_pair;

/// Both sides run this loop: every switch returns to where the other side's
/// last one was made, the one call site below.
static void one_site_side(void *arg) {
    one_site_pair *p = arg;
    int me = p->left & 1; // the first side started with an even count (see below)
    while (p->left > 0) {
        p->left--;
        p->sw(&p->sp[me], p->sp[!me], NULL);
    }
    p->sw(&p->sp[me], p->caller, NULL); // never resumed
}

static int one_site(long round_trips, switch_fn *sw, size_t skip) {
    enum { STACK_SIZE = 64 * 1024 };
    char *stacks = malloc(2 * STACK_SIZE);
    if (!stacks) return -1;
    one_site_pair p = {.left = 2 * round_trips, .sw = sw};
    // Side 0 starts with the even count, side 1 first runs after one switch
    // (an odd count): each reads its index once, from the count it starts with.
    p.sp[0] = (char *)green_ctx_make(stacks + STACK_SIZE, one_site_side, &p) + skip;
    p.sp[1] = (char *)green_ctx_make(stacks + 2 * STACK_SIZE, one_site_side, &p) + skip;
    sw(&p.caller, p.sp[0], NULL);
    free(stacks);
    return 0;
}

int green_switch_floor_one_site(long round_trips) { return one_site(round_trips, green_ctx_switch, 0); }

#if defined(__x86_64__)
// green_ctx_switch without the MXCSR and x87 control words, for the row
// that shows what keeping them per fiber costs: nothing else uses it.
void *floor_switch_without_fp(void **save_sp, void *load_sp, void *pass);
__asm__(".text\n"
        ".p2align 4\n"
        "floor_switch_without_fp:\n"
        "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
        "    movq %rsp, (%rdi)\n    movq %rsi, %rsp\n"
        "    movq %rdx, %rax\n"
        "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
        "    ret\n");

int green_switch_floor_without_fp(long round_trips) {
    // green_ctx_make's first frame starts with the 8-byte control-word slot.
    return one_site(round_trips, floor_switch_without_fp, 8);
}
#else
int green_switch_floor_without_fp(long round_trips) { (void)round_trips; return -1; }
#endif

// ---- spawn + join without Swift -------------------------------------------

static void empty_body(void *arg) { (void)arg; }

int green_spawn_join_floor(long count) {
    for (long i = 0; i < count; i++) {
        green_fiber *f = green_fiber_spawn(0, empty_body, NULL);
        if (!f) return -1;
        // It has not run yet: this parks until it ends (its record is not
        // touched after the join returns: it is recycled meanwhile).
        green_fiber_join(f, GREEN_NO_DEADLINE, GREEN_PARK_UNINTERRUPTIBLE);
    }
    return 0;
}

// ---- spawn + join with nothing but a stack ----------------------------------
//
// The least a fiber with a stack of its own costs: a record from a free
// list, a stack from a pool (the one freed last), a first frame made on it,
// a switch in, the body, a switch back, and the stack and record returned.
// No scheduler, no ready queue, no join queue, none of a thread's state
// (errno, Swift's access set, census, cancellation): what Green's C core
// adds to this is what makes its fiber a thread to the program.

typedef struct bare_fiber {
    void *sp;                ///< its context while the joiner runs
    char *stack;             ///< its stack's top
    void (*body)(void *);    ///< what it runs
    void *joiner_sp;         ///< the joiner's context while it runs
    struct bare_fiber *next; ///< on the free list
} bare_fiber;

enum { BARE_STACK_SIZE = 64 * 1024, BARE_POOL = 4 };

typedef struct {
    bare_fiber *free_records;
    char *stacks[BARE_POOL]; ///< free stacks' tops, most recently freed last
    int nstacks;
} bare_pool;

static void bare_main(void *arg) {
    bare_fiber *f = arg;
    f->body(NULL);
    green_ctx_switch(&f->sp, f->joiner_sp, NULL); // done: never resumed
}

static inline bare_fiber *bare_spawn(bare_pool *p, void (*body)(void *)) {
    bare_fiber *f = p->free_records;
    p->free_records = f->next;
    f->stack = p->stacks[--p->nstacks];
    f->body = body;
    f->sp = green_ctx_make(f->stack, bare_main, f);
    return f;
}

static inline void bare_join(bare_pool *p, bare_fiber *f) {
    green_ctx_switch(&f->joiner_sp, f->sp, NULL); // runs it to its end
    p->stacks[p->nstacks++] = f->stack;
    f->next = p->free_records;
    p->free_records = f;
}

int green_spawn_join_bare_floor(long count) {
    bare_pool p = {0};
    bare_fiber records[BARE_POOL];
    char *memory = malloc((size_t)BARE_POOL * BARE_STACK_SIZE);
    if (!memory) return -1;
    for (int i = 0; i < BARE_POOL; i++) {
        records[i].next = p.free_records;
        p.free_records = &records[i];
        p.stacks[p.nstacks++] = memory + (size_t)(i + 1) * BARE_STACK_SIZE;
    }
    for (long i = 0; i < count; i++) bare_join(&p, bare_spawn(&p, empty_body));
    free(memory);
    return 0;
}
