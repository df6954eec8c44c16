/* SPDX-License-Identifier: MIT */
/*
 * Ring-0 part of the payload.  The VMM has already put the vCPU in long
 * mode (page tables, GDT, IDT, TSS), so all that is left is to drop to
 * ring 3, where the workload runs: on a software KVM ring-0 code is
 * emulated and about a thousand times slower than ring-3 code.
 *
 * In:  rdi = struct ks_params (guest virtual = physical)
 *      rsi = top of the ring-3 stack
 *      rsp = top of the ring-0 stack (also TSS.RSP0)
 */
#include "kvmstall/abi.h"

	.section .text.entry, "ax"
	.code64
	.globl ks_entry
ks_entry:
	/* vCPU 0 of a hostile test payload may misbehave right here. */
	cmpl	$0, KS_PARAMS_VCPU_ID_OFF(%rdi)
	jne	2f
	movl	KS_PARAMS_WORKLOAD_OFF(%rdi), %eax
	cmpl	$KS_WL_HOSTILE_TRIPLE, %eax
	je	ks_hostile_triple
	cmpl	$KS_WL_HOSTILE_HLT, %eax
	je	ks_hostile_hlt
	cmpl	$KS_WL_HOSTILE_NEVER_READY, %eax
	je	ks_hostile_spin
2:	pushq	$(KS_SEL_DATA3 | 3)	/* ss */
	pushq	%rsi			/* rsp */
	pushq	$0x2			/* rflags: IF clear */
	pushq	$(KS_SEL_CODE3 | 3)	/* cs */
	leaq	ks_guest_main(%rip), %rax
	pushq	%rax			/* rip */
	xorl	%eax, %eax
	movl	%eax, %ds
	movl	%eax, %es
	iretq

/* An empty IDT, then an exception: #UD, #GP and #DF cannot be delivered. */
ks_hostile_triple:
	lidt	ks_null_idt(%rip)
	ud2
ks_hostile_hlt:
	cli
1:	hlt
	jmp	1b
ks_hostile_spin:
	pause
	jmp	ks_hostile_spin
ks_null_idt:
	.word	0
	.quad	0

/*
 * Exception stubs, 16 bytes apart from KS_GPA_PAYLOAD + 0x100, so that the
 * VMM can fill the IDT without reading symbols.  Vectors that push no
 * error code get a zero one.
 */
	.org	KS_ISR_TABLE_OFF
	.globl	ks_isr_table
ks_isr_table:
	vector = 0
	.rept	32
	.balign	16
	.if (vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30)
	nop
	nop
	.else
	pushq	$0
	.endif
	pushq	$vector
	jmp	ks_isr_common
	vector = vector + 1
	.endr

/*
 * Ucall entry: ring 3 executes int3 (#BP, a trap gate with DPL 3); ring 0
 * does the "out" with the caller's registers intact and returns after the
 * int3.  Ring 3 cannot do port I/O itself on every KVM: a software KVM
 * ignores IOPL, and may refuse "int n" and syscall from ring 3.
 */
	.org	KS_UCALL_HANDLER_OFF
	.globl	ks_ucall_entry
ks_ucall_entry:
	outl	%eax, %dx
	iretq

/*
 * Report the exception to the VMM and stay stopped.  Stack: vector,
 * error code, rip, cs, rflags, rsp, ss.
 */
ks_isr_common:
	popq	%rdi			/* vector */
	popq	%rsi			/* error code */
	movq	(%rsp), %rcx		/* rip */
	movq	8(%rsp), %r9		/* cs */
	movq	%cr2, %r8
	movl	$KS_UCALL_EXCEPTION, %eax
	movw	$KS_PORT_UCALL, %dx
	outl	%eax, %dx
1:	hlt
	jmp	1b
