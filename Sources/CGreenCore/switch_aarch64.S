// Context switch for aarch64 (AAPCS64). Saves x19-x30, d8-d15 and FPCR.
#if defined(__aarch64__)
    .text
    .globl green_ctx_switch
    .hidden green_ctx_switch
    .type green_ctx_switch,%function
    .p2align 4
// void *green_ctx_switch(void **save_sp /* x0 */, void *load_sp /* x1 */, void *pass /* x2 */)
// Returns, on the context resumed, the `pass` of the switch that resumed it.
green_ctx_switch:
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x9, sp
    stlr x9, [x0]           // release: a thread that loads this sp with acquire (a hand-off) sees the registers above
    mov sp, x1
    ldr x9, [sp, #160]
    msr fpcr, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    mov x0, x2
    ret
    .size green_ctx_switch,.-green_ctx_switch

    .globl green_ctx_trampoline
    .hidden green_ctx_trampoline
    .type green_ctx_trampoline,%function
    .p2align 4
// First code a new fiber runs: fn in x19, arg in x20 (see context.c).
green_ctx_trampoline:
    mov x0, x20
    blr x19
    brk #0                  // fn never returns
    .size green_ctx_trampoline,.-green_ctx_trampoline
#endif
    .section .note.GNU-stack,"",%progbits
