// Context switch for x86_64 (System V). Saves only what the ABI says a callee
// must preserve: rbx, rbp, r12-r15, MXCSR and the x87 control word.
#if defined(__x86_64__)
    .text
    .globl green_ctx_switch
    .hidden green_ctx_switch
    .type green_ctx_switch,@function
    .p2align 4
// void *green_ctx_switch(void **save_sp /* rdi */, void *load_sp /* rsi */, void *pass /* rdx */)
// Returns, on the context resumed, the `pass` of the switch that resumed it.
green_ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsp, %rax
    movq %rsi, %rsp
    // Load the control words only when they differ (they almost never do):
    // ldmxcsr and fldcw cost more than a compare.
    movl (%rsp), %ecx
    cmpl (%rax), %ecx
    jne 1f
2:  movzwl 4(%rsp), %ecx
    cmpw 4(%rax), %cx
    jne 3f
4:  movq %rdx, %rax
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
1:  ldmxcsr (%rsp)
    jmp 2b
3:  fldcw 4(%rsp)
    jmp 4b
    .cfi_endproc
    .size green_ctx_switch,.-green_ctx_switch

    .globl green_ctx_trampoline
    .hidden green_ctx_trampoline
    .type green_ctx_trampoline,@function
    .p2align 4
// First code a new fiber runs: fn in r12, arg in r13 (see context.c).
green_ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r13, %rdi
    callq *%r12
    ud2                     // fn never returns: the fiber switches away for good
    .cfi_endproc
    .size green_ctx_trampoline,.-green_ctx_trampoline
#endif
    .section .note.GNU-stack,"",@progbits
