/* SPDX-License-Identifier: GPL-2.0 */
/*
 * porthammer: a Multiboot v1 kernel that behaves like a hostile guest. The
 * boot loader enters _start in 32-bit protected mode with paging off, EAX =
 * the boot magic and EBX = the Multiboot information structure.
 */
	.set MB_MAGIC, 0x1badb002
	.set MB_FLAGS, 0x00000003	/* page-aligned modules, memory info */

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .bss
	.balign 16
stack_bottom:
	.skip 4096
stack_top:

	.text
	.globl _start
_start:
	cli				/* and never sti: no interrupt handlers */
	cld
	mov $stack_top, %esp
	push %ebx			/* kmain(magic, info) */
	push %eax
	call kmain
1:	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
