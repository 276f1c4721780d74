/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Multiboot v1 entry of the dirtier. The header uses the a.out kludge (flag
 * bit 16): QEMU 7.2 refuses a 64-bit ELF for Multiboot without it, and
 * kvmsnap's loader takes it as well, so one file boots under both.
 *
 * The loader enters mb_entry in 32-bit protected mode, paging off, with
 * EAX = 0x2BADB002 and EBX = the Multiboot information. CPL0 code may be
 * emulated (about 1M instructions/s), so this does only what long mode
 * needs: the identity map of the low 4 GiB that kvmsnap builds for its
 * built-in guests (2 MiB pages, U/S and R/W at every level), PAE, EFER.LME,
 * paging, a far jump to 64-bit code. mb_setup() (setup.c) then turns the
 * Multiboot information into a struct kvmsnap_bootinfo, and crt0's _start
 * runs as kvmsnap would enter it: RDI = boot info, RSI = vCPU 0.
 */

#define MB_HEADER_MAGIC	0x1badb002
#define MB_FLAGS	0x00010003 /* page-aligned modules, memory info, a.out kludge */

#define PTE_FLAGS	0x7	   /* P, R/W, U/S */
#define PTE_PS		0x80	   /* 2 MiB page */
#define PD_ENTRIES	2048	   /* four PDs: 4 GiB in 2 MiB pages */
#define PDPT_ENTRIES	4
#define PAGE_SIZE	4096

#define CR4_PAE		(1 << 5)
#define CR0_PG		(1 << 31)
#define MSR_EFER	0xc0000080
#define EFER_LME	(1 << 8)

#define SEL_CODE64	0x08
#define SEL_DATA	0x10

#define MB_STACK_SIZE	16384

	.section .mbheader, "a"
	.balign	4
mb_header:
	.long	MB_HEADER_MAGIC
	.long	MB_FLAGS
	.long	-(MB_HEADER_MAGIC + MB_FLAGS)
	.long	mb_header		/* header_addr: ties file offsets to addresses */
	.long	__mb_load_start		/* load_addr */
	.long	__mb_load_end		/* load_end_addr */
	.long	__mb_bss_end		/* bss_end_addr */
	.long	mb_entry		/* entry_addr */

	.section .text.mb32, "ax"
	.code32
	.global	mb_entry
mb_entry:
	cli
	cld
	mov	$mb_stack + MB_STACK_SIZE, %esp
	mov	%eax, %ebp			/* boot magic */
	mov	%ebx, %esi			/* Multiboot information */

	/* PML4[0] -> PDPT; PDPT[0..3] -> the four PDs. The tables are .bss: zero. */
	movl	$mb_pdpt + PTE_FLAGS, mb_pml4
	xor	%ecx, %ecx
1:	mov	%ecx, %eax
	shl	$12, %eax
	add	$mb_pd + PTE_FLAGS, %eax
	mov	%eax, mb_pdpt(, %ecx, 8)
	inc	%ecx
	cmp	$PDPT_ENTRIES, %ecx
	jne	1b

	/* PD entry i maps 2 MiB at i << 21; the high halves stay zero. */
	xor	%ecx, %ecx
2:	mov	%ecx, %eax
	shl	$21, %eax
	or	$PTE_FLAGS | PTE_PS, %eax
	mov	%eax, mb_pd(, %ecx, 8)
	inc	%ecx
	cmp	$PD_ENTRIES, %ecx
	jne	2b

	mov	$mb_pml4, %eax
	mov	%eax, %cr3
	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	or	$CR0_PG, %eax
	mov	%eax, %cr0
	lgdt	mb_gdt_desc
	ljmp	$SEL_CODE64, $mb_entry64

	.code64
mb_entry64:
	mov	$SEL_DATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%ebp, %edi			/* mb_setup(magic, info) */
	call	mb_setup
	mov	%rax, %rdi			/* boot info */
	xor	%esi, %esi			/* vCPU 0: Multiboot starts only the BSP */
	jmp	_start

	.section .rodata
	.balign	8
	/* Only for the jump: crt0 loads its own GDT with the same selectors. */
mb_gdt:
	.quad	0
	.quad	0x00af9b000000ffff		/* SEL_CODE64: P, DPL0, code, L=1 */
	.quad	0x00cf93000000ffff		/* SEL_DATA: P, DPL0, data R/W */
mb_gdt_end:
mb_gdt_desc:
	.word	mb_gdt_end - mb_gdt - 1
	.long	mb_gdt

	.section .bss
	.balign	PAGE_SIZE
mb_pml4:
	.skip	PAGE_SIZE
mb_pdpt:
	.skip	PAGE_SIZE
mb_pd:
	.skip	PDPT_ENTRIES * PAGE_SIZE
	.balign	16
mb_stack:
	.skip	MB_STACK_SIZE

	/*
	 * Where the runtime's message-port writes go when no message port
	 * answers (QEMU). In the load image at a fixed address, so a host can
	 * read the PROGRESS and PASS registers there (guest-abi.h).
	 */
	.section .mbscratch, "aw", @progbits
	.global	mb_scratch
mb_scratch:
	.skip	PAGE_SIZE

	.section .note.GNU-stack, "", @progbits
