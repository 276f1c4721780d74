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

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

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
 * and guest RAM without writing anything. One error line and -ENOEXEC.
 */
int elf__parse(struct mem_registry *mem, const char *name, const void *buf, size_t len,
	       unsigned int bits, struct elf_image *img);

/* Copy the segments of a parsed image into guest RAM and zero their bss. */
void elf__load(struct mem_registry *mem, const struct elf_image *img, const void *buf);

/*
 * [gpa, gpa + size) must be writable guest RAM at or above KERNEL_MIN_GPA,
 * inside one memory range. what prefixes the error ("program header 2").
 * 0 or -ENOEXEC.
 */
int loader__check_span(struct mem_registry *mem, const char *name, const char *what, uint64_t gpa,
		       uint64_t size);

#endif
