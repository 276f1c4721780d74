/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry of the built-in guests. Every vCPU arrives at _start in 64-bit mode
 * at CPL0 with RDI = boot info GPA, RSI = vCPU index, interrupts off and the
 * host's identity map (U/S set everywhere, so ring 3 can reach all of it).
 *
 * CPL0 code is emulated on some hosts (about 1M instructions/s), so this file
 * does the least that makes ring 3 safe: a stack, a GDT and TSS (RSP0 for
 * exceptions taken from ring 3), an IDT whose exception handlers report to
 * the VMM, then iretq to rt_entry() in ring 3. It never loops over memory
 * except for the 256 IDT gates, built once on vCPU 0.
 */
#include "rt.h"

#define KSTACK_SHIFT	12 /* 4 KiB exception stack per vCPU */
#define KSTACK_SIZE	(1 << KSTACK_SHIFT)

/* Selectors; user data sits below user code, as sysret would want. */
#define SEL_KCODE	0x08
#define SEL_KDATA	0x10
#define SEL_UDATA	0x18
#define SEL_UCODE	0x20
#define SEL_TSS		0x28 /* 16-byte system descriptor */
#define GDT_SIZE	0x38
#define RPL3		3

/* Flat descriptors: base 0, limit 4 GiB; L=1 on code for 64-bit mode. */
#define DESC_KCODE64	0x00af9a000000ffff /* P, DPL0, code, exec/read */
#define DESC_KDATA	0x00cf92000000ffff /* P, DPL0, data, read/write */
#define DESC_UDATA	0x00cff2000000ffff /* P, DPL3, data, read/write */
#define DESC_UCODE64	0x00affa000000ffff /* P, DPL3, code, exec/read */
#define TSS_ACCESS	0x89		   /* P, DPL0, available 64-bit TSS */

/* The 64-bit TSS: RSP0 at 4, I/O map base at 102 (past the end: no bitmap). */
#define TSS_SIZE	104
#define TSS_RSP0	4
#define TSS_IOMAP	102

/*
 * Per-vCPU area: the GDT comes first, so an exception handler finds its
 * vCPU's fault record from the GDT base (sgdt) whatever the stack holds.
 */
#define PC_GDT		0x00
#define PC_TSS		0x40
#define PC_FAULT	0xb0
#define PC_SHIFT	8
#define PC_SIZE		(1 << PC_SHIFT)
#if PC_TSS < GDT_SIZE || PC_FAULT < PC_TSS + TSS_SIZE || PC_FAULT + RT_FAULT_SIZE > PC_SIZE
#error "per-vCPU area overlaps"
#endif

#define IDT_VECTORS	256
#define IDT_EXCEPTIONS	32 /* vectors 0-31 report a fault; the rest iretq */
#define IDT_GATE_SIZE	16
#define GATE_INTR	0x8e /* P, DPL0, 64-bit interrupt gate: ring 3 cannot int n */
#define ISR_STUB_SIZE	16

#define RFLAGS_USER	0x2 /* reserved bit 1 only: IF=0, IOPL=0 */

#define PIC1_DATA	0x21
#define PIC2_DATA	0xa1
#define PIC_MASK_ALL	0xff

	.section .text.entry, "ax"
	.code64
	.global _start
_start:
	cld
	cmp	$RT_MAX_CPUS, %rsi
	jae	too_many_cpus
	mov	%rdi, %r12			/* boot info */
	mov	%rsi, %r13			/* vCPU index */

	/* Own exception stack; it also carries the iretq frame below. */
	mov	%r13, %rax
	shl	$KSTACK_SHIFT, %rax
	lea	kstacks + KSTACK_SIZE(%rax), %rsp

	/*
	 * All vCPUs store the same values, so no one waits for vCPU 0. The
	 * fault handlers need the port before ring 3 runs.
	 */
	mov	%r12, rt_bootinfo(%rip)
	mov	RT_BI_MSGPORT(%r12), %rax
	mov	%rax, rt_msgport(%rip)

	/* rbx = this vCPU's area; its GDT's null descriptor is zero (.bss). */
	mov	%r13, %rbx
	shl	$PC_SHIFT, %rbx
	add	$percpu, %rbx
	movabs	$DESC_KCODE64, %rax
	mov	%rax, PC_GDT + SEL_KCODE(%rbx)
	movabs	$DESC_KDATA, %rax
	mov	%rax, PC_GDT + SEL_KDATA(%rbx)
	movabs	$DESC_UDATA, %rax
	mov	%rax, PC_GDT + SEL_UDATA(%rbx)
	movabs	$DESC_UCODE64, %rax
	mov	%rax, PC_GDT + SEL_UCODE(%rbx)

	/* TSS: exceptions from ring 3 switch to this vCPU's stack. */
	mov	%rsp, PC_TSS + TSS_RSP0(%rbx)
	movw	$TSS_SIZE, PC_TSS + TSS_IOMAP(%rbx)

	/*
	 * TSS descriptor: limit[15:0], base[23:0] at bit 16, access at bit
	 * 40, base[31:24] at bit 56; base[63:32] in the second quadword.
	 */
	lea	PC_TSS(%rbx), %rax
	mov	%eax, %ecx
	and	$0xffffff, %ecx
	shl	$16, %rcx
	mov	%eax, %edx
	and	$0xff000000, %edx
	shl	$32, %rdx
	or	%rdx, %rcx
	movabs	$(TSS_ACCESS << 40 | (TSS_SIZE - 1)), %rdx
	or	%rdx, %rcx
	mov	%rcx, PC_GDT + SEL_TSS(%rbx)
	shr	$32, %rax
	mov	%rax, PC_GDT + SEL_TSS + 8(%rbx)

	/* lgdt takes a 10-byte limit:base operand; build it on the stack. */
	sub	$16, %rsp
	movw	$(GDT_SIZE - 1), 6(%rsp)
	mov	%rbx, 8(%rsp)
	lgdt	6(%rsp)
	add	$16, %rsp

	/* Reload CS with a far return, then the data segments and TR. */
	pushq	$SEL_KCODE
	lea	1f(%rip), %rax
	push	%rax
	lretq
1:	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	mov	$SEL_TSS, %eax
	ltr	%ax

	test	%r13, %r13
	jnz	wait_idt

	/* vCPU 0: mask the legacy PIC, so no stray IRQ reaches ring 3. */
	mov	$PIC_MASK_ALL, %al
	outb	%al, $PIC1_DATA
	outb	%al, $PIC2_DATA

	/*
	 * Build the shared IDT. A gate's low quadword holds offset[15:0],
	 * the selector at bit 16, the type at bit 40 and offset[31:16] at bit
	 * 48; the high quadword (offset[63:32]) stays zero: we run below 4 GiB.
	 */
	lea	idt(%rip), %rdi
	lea	isr_stubs(%rip), %rax
	xor	%esi, %esi
2:	call	make_gate
	mov	%rdx, (%rdi)
	add	$IDT_GATE_SIZE, %rdi
	add	$ISR_STUB_SIZE, %rax
	inc	%esi
	cmp	$IDT_EXCEPTIONS, %esi
	jne	2b
	lea	ignore_irq(%rip), %rax
	call	make_gate
3:	mov	%rdx, (%rdi)
	add	$IDT_GATE_SIZE, %rdi
	inc	%esi
	cmp	$IDT_VECTORS, %esi
	jne	3b
	movl	$1, idt_ready(%rip)		/* x86 stores are ordered */
	jmp	load_idt

wait_idt:
	pause
	cmpl	$0, idt_ready(%rip)
	je	wait_idt

load_idt:
	lidt	idt_desc(%rip)

	/*
	 * Drop to ring 3 at rt_entry(cpu, bi) on this vCPU's user stack. A
	 * zero return address below the entry keeps the ABI's alignment and
	 * turns a return from rt_entry (it has none) into a fault report.
	 */
	mov	%r13, %rax
	shl	$RT_USTACK_SHIFT, %rax
	lea	ustacks + RT_USTACK_SIZE - 8(%rax), %rcx
	movq	$0, (%rcx)
	pushq	$(SEL_UDATA | RPL3)
	push	%rcx
	pushq	$RFLAGS_USER
	pushq	$(SEL_UCODE | RPL3)
	pushq	$rt_entry
	mov	%r13d, %edi
	mov	%r12, %rsi
	xor	%ebp, %ebp
	iretq

/* rdx = interrupt gate (low quadword) for the handler at rax (< 4 GiB). */
make_gate:
	mov	%eax, %edx
	and	$0xffff, %edx
	mov	%eax, %ecx
	and	$0xffff0000, %ecx
	shl	$32, %rcx
	or	%rcx, %rdx
	movabs	$(GATE_INTR << 40 | SEL_KCODE << 16), %rcx
	or	%rcx, %rdx
	ret

/* Too many vCPUs for the per-vCPU arrays: say so and end the VM. */
too_many_cpus:
	mov	RT_BI_MSGPORT(%rdi), %rax
	lea	too_many_msg(%rip), %rcx
	mov	%rcx, RT_MSGPORT_PUTS(%rax)
	movq	$RT_EXIT_TOO_MANY_CPUS, RT_MSGPORT_EXIT(%rax)
	jmp	halt_forever

/*
 * Exception stubs, ISR_STUB_SIZE bytes apart so the IDT loop can step
 * through them. Each pushes a zero error code if the CPU did not push one,
 * then the vector.
 */
	.macro isr_stub vec
	.org	isr_stubs + \vec * ISR_STUB_SIZE
	.if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$\vec
	jmp	fault_common
	.endm

	.balign	ISR_STUB_SIZE
isr_stubs:
	.irp	vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	isr_stub \vec
	.endr
	.org	isr_stubs + IDT_EXCEPTIONS * ISR_STUB_SIZE

/*
 * Stack: vector, error code, then the CPU's frame (rip, cs, rflags, rsp,
 * ss). Fill this vCPU's struct kvmsnap_fault, hand it to the VMM and stop.
 * Registers need not survive: this vCPU never runs on.
 */
fault_common:
	sub	$16, %rsp
	sgdt	6(%rsp)
	mov	8(%rsp), %rbx
	add	$16, %rsp
	lea	PC_FAULT(%rbx), %rbx
	mov	0(%rsp), %rax
	mov	%rax, RT_FAULT_VECTOR(%rbx)
	mov	8(%rsp), %rax
	mov	%rax, RT_FAULT_ERROR_CODE(%rbx)
	mov	16(%rsp), %rax
	mov	%rax, RT_FAULT_RIP(%rbx)
	mov	24(%rsp), %rax
	mov	%rax, RT_FAULT_CS(%rbx)
	mov	32(%rsp), %rax
	mov	%rax, RT_FAULT_RFLAGS(%rbx)
	mov	40(%rsp), %rax
	mov	%rax, RT_FAULT_RSP(%rbx)
	mov	%cr2, %rax
	mov	%rax, RT_FAULT_CR2(%rbx)
	mov	rt_msgport(%rip), %rax
	mov	%rbx, RT_MSGPORT_FAULT(%rax)
halt_forever:
	cli
	hlt
	jmp	halt_forever

/* Vectors 32-255: nothing should send them (the PIC is masked); ignore. */
ignore_irq:
	iretq

	.section .rodata
too_many_msg:
	.asciz	"kvmsnap guest: vCPU index too large for the built-in guests\n"

	.balign	8
idt_desc:
	.word	IDT_VECTORS * IDT_GATE_SIZE - 1
	.quad	idt

	.section .bss
	.balign	8
	.global	rt_bootinfo, rt_msgport
rt_bootinfo:
	.skip	8
rt_msgport:
	.skip	8
idt_ready:
	.skip	4

	.balign	4096
idt:
	.skip	IDT_VECTORS * IDT_GATE_SIZE
percpu:
	.skip	RT_MAX_CPUS * PC_SIZE
	.balign	4096
kstacks:
	.skip	RT_MAX_CPUS * KSTACK_SIZE
ustacks:
	.skip	RT_MAX_CPUS * RT_USTACK_SIZE

	.section .note.GNU-stack, "", @progbits
