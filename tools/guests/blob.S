/*
 * Embed the built-in guest ELF files; vmm/guests.c lists them. The build
 * passes the guest folder to the assembler with -I, where .incbin looks.
 */
#define EMBED(name, file)                                            \
	.section .rodata.guest_##name, "a";                     \
	.balign 16;                                             \
	.global guest_##name##_start, guest_##name##_end;       \
	guest_##name##_start:                                   \
	.incbin file;                                           \
	guest_##name##_end:

EMBED(hello, "hello.elf")
EMBED(dirtier, "dirtier.elf")
EMBED(pagewriter, "pagewriter.elf")

	.section .note.GNU-stack, "", @progbits
