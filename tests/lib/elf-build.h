/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the loader tests (test_loader_elf.c, test_loader_multiboot.c):
 * little-endian stores and loads for kernel images built in memory field by
 * field, the common ELF64 header and program header, stderr capture, and the
 * small checks and fuzzing helpers both files use. Compiled once into
 * libtest.a (tests/lib/elf-build.c); count_lines() and write_file() are in
 * util.h.
 */
#ifndef KVMSNAP_TEST_ELF_BUILD_H
#define KVMSNAP_TEST_ELF_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define PT_LOAD 1
#define PF_X	1
#define PF_W	2
#define PF_R	4

/* Little-endian stores into the image under construction, and loads. */
void w16(uint8_t *p, uint16_t v);

void w32(uint8_t *p, uint32_t v);

void w64(uint8_t *p, uint64_t v);

uint32_t r32(const uint8_t *p);

uint64_t r64(const uint8_t *p);

/* ELF64 x86-64 executables. */
#define EHDR64_SIZE 64
#define PHDR64_SIZE 56

struct phdr64 {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

/*
 * The identification, type, machine, version, entry and program header
 * table fields (at EHDR64_SIZE); e_ehsize, e_shentsize and the rest stay as
 * they are.
 */
void elf64_put_ehdr(uint8_t *img, uint64_t entry, uint16_t phnum);

/* Program header i, all but p_align. */
void elf64_put_phdr(uint8_t *img, unsigned int i, const struct phdr64 *ph);

/* Send stderr to a temporary file while the code under test runs. */
struct capture {
	int saved;
	FILE *f;
};

void capture_begin(struct capture *c);

void capture_end(struct capture *c, char *buf, size_t size);

/* Send stderr to /dev/null for a fuzz loop; returns the fd to restore it from. */
int quiet_stderr(void);

bool all_zero(const void *p, size_t len);

/* xorshift64: the fuzz loops' deterministic generator, one state per file. */
uint64_t xorshift64(uint64_t *state);

#endif
