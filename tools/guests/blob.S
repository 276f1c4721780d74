/* Embed the built-in guest ELF files; vmm/guests.c lists them. */
#define EMBED(name)                                             \
	.section .rodata.guest_##name, "a";                     \
	.balign 16;                                             \
	.global guest_##name##_start, guest_##name##_end;       \
	guest_##name##_start:                                   \
	.incbin GUEST_DIR "/" #name ".elf";                     \
	guest_##name##_end:

EMBED(hello)
EMBED(dirtier)

	.section .note.GNU-stack, "", @progbits
