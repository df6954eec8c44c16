/* SPDX-License-Identifier: MIT */
/* The guest payload (guests/), embedded in the VMM binary. */
	.section .rodata
	.balign	4096
	.globl	ks_payload_start
	.globl	ks_payload_end
ks_payload_start:
	.incbin	"guests/guest.bin"
ks_payload_end:
	.section .note.GNU-stack, "", @progbits
