// context.c — lay out a fresh stack so that the first green_ctx_switch into
// it "returns" into green_ctx_trampoline, which calls fn(arg).
#include <stdint.h>
#include <string.h>
#include "internal.h"

void green_ctx_trampoline(void);

void *green_ctx_make(void *stack_top, void (*fn)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)stack_top & ~(uintptr_t)15) - 16;
#if defined(__x86_64__)
    // Matches green_ctx_switch's restore order: control words, r15..r12,
    // rbx, rbp, return address. After `ret` rsp is 16-byte aligned, so the
    // trampoline's `call` enters fn with the ABI's alignment.
    uint64_t *sp = (uint64_t *)(top - 8 * 8);
    memset(sp, 0, 8 * 8);
    uint32_t mxcsr = 0x1F80;  // default: all exceptions masked, round to nearest
    uint16_t fpucw = 0x037F;  // default x87 control word
    memcpy((char *)sp, &mxcsr, 4);
    memcpy((char *)sp + 4, &fpucw, 2);
    sp[3] = (uint64_t)(uintptr_t)arg; // r13
    sp[4] = (uint64_t)(uintptr_t)fn;  // r12
    sp[7] = (uint64_t)(uintptr_t)green_ctx_trampoline;
    return sp;
#elif defined(__aarch64__)
    uint64_t *sp = (uint64_t *)(top - 176);
    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)fn;   // x19
    sp[1] = (uint64_t)(uintptr_t)arg;  // x20
    sp[11] = (uint64_t)(uintptr_t)green_ctx_trampoline; // x30 (lr)
    return sp;
#else
#error "Green supports x86_64 and aarch64"
#endif
}
