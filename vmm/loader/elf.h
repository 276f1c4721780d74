/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Private to vmm/loader/: ELF parsing shared by the ELF64 and Multiboot
 * loaders, the guest-RAM check every loaded span goes through, and
 * little-endian field access to file bytes (never cast file bytes to structs:
 * they may be unaligned, short or hostile).
 */
#ifndef KVMSNAP_LOADER_ELF_H
#define KVMSNAP_LOADER_ELF_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#include "lib/le.h"

#define ELF_PF_X      1
#define ELF_MAX_LOADS 16

/* A PT_LOAD segment that passed every check: it can be copied blindly. */
struct elf_segment {
	unsigned int index; /* program header number, for messages */
	uint32_t flags;	    /* ELF_PF_X, ... */
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

struct elf_image {
	unsigned int bits;  /* 32 or 64 */
	uint64_t entry;	    /* physical, inside an executable segment */
	uint64_t image_end; /* page-aligned end of the highest segment */
	unsigned int nr_loads;
	struct elf_segment loads[ELF_MAX_LOADS];
};

/* "\177ELF" and the class byte (1 = 32-bit, 2 = 64-bit); 0 if not ELF. */
unsigned int elf__class(const void *buf, size_t len);

/*
 * Check an ELF executable (bits 32, 64, or 0 for either) against the file
 * and guest RAM without writing anything. 0, or -ENOEXEC with *err set.
 */
int elf__parse(struct mem_registry *mem, const char *name, const void *buf, size_t len,
	       unsigned int bits, struct elf_image *img, struct error *err);

/* Copy the segments of a parsed image into guest RAM and zero their bss. */
void elf__load(struct mem_registry *mem, const struct elf_image *img, const void *buf);

/*
 * [gpa, gpa + size) must be writable guest RAM at or above KERNEL_MIN_GPA,
 * inside one memory range. what prefixes the error ("program header 2").
 * 0, or -ENOEXEC with *err set.
 */
int loader__check_span(struct mem_registry *mem, const char *name, const char *what, uint64_t gpa,
		       uint64_t size, struct error *err);

#endif
