// switch_test.c — checks the assembly context switch on its own, natively and
// (through .ci/switch-test) for aarch64 under qemu: callee-saved integer and
// floating-point registers survive switches, each context keeps its own FP
// control state (rounding mode), and a new context starts with the ABI's
// stack alignment.
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void green_ctx_switch(void **save_sp, void *load_sp);
void *green_ctx_make(void *stack_top, void (*fn)(void *), void *arg);

static void *main_sp, *fiber_sp;
static int failures;
static volatile double sink;

#define CHECK(cond, ...) do { if (!(cond) && failures++ < 5) { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); } } while (0)

/// Keeps many integer and double values live across a switch, so the
/// compiler must hold some in callee-saved registers.
__attribute__((noinline)) static double work_across_switch(int seed) {
    long a = seed, b = seed * 3, c = seed * 5, d = seed * 7, e = seed * 11, f = seed * 13;
    double x = seed * 0.5, y = seed * 1.5, z = seed * 2.5, w = seed * 3.5, v = seed * 4.5, u = seed * 5.5;
    green_ctx_switch(&fiber_sp, main_sp);
    return (double)(a + b + c + d + e + f) + x + y + z + w + v + u;
}

static void fiber_entry(void *arg) {
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    CHECK(fp % 16 == 0, "fiber frame not 16-byte aligned: %#lx", (unsigned long)fp);
    int *rounds = arg;
    CHECK(fegetround() == FE_TONEAREST, "a new context must start with the default rounding mode");
    fesetround(FE_UPWARD); // this context's own FP control state
    for (int i = 0; i < *rounds; i++) {
        double r = work_across_switch(i);
        double expect = (double)(i * 40) + i * 18.0; // 1+3+5+7+11+13 and 0.5+…+5.5
        CHECK(r == expect, "fiber lost a register: round %d got %f want %f", i, r, expect);
        CHECK(fegetround() == FE_UPWARD, "fiber lost its rounding mode");
    }
    green_ctx_switch(&fiber_sp, main_sp);
    abort(); // never resumed
}

int main(void) {
    static char stack[256 * 1024] __attribute__((aligned(16)));
    int rounds = 1000;
    fiber_sp = green_ctx_make(stack + sizeof stack, fiber_entry, &rounds);
    long a = 1, b = 2, c = 3, d = 4, e = 5, f = 6;
    double x = 1.25, y = 2.25, z = 3.25;
    for (int i = 0; i <= rounds; i++) {
        green_ctx_switch(&main_sp, fiber_sp);
        CHECK(fegetround() == FE_TONEAREST, "main's rounding mode changed by the fiber");
        a += 1; b += 2; c += 3; d += 4; e += 5; f += 6; x += 1; y += 2; z += 3;
    }
    long n = rounds + 1;
    CHECK(a == 1 + n && f == 6 + 6 * n, "main lost an integer register");
    CHECK(x == 1.25 + n && z == 3.25 + 3 * n, "main lost a floating-point register");
    sink = x + y + z;
    if (failures) { fprintf(stderr, "%d failure(s)\n", failures); return 1; }
    printf("context switch: %d round trips, registers and FP control state intact\n", rounds);
    return 0;
}
