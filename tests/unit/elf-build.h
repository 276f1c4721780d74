/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the loader tests (test_loader_elf.c, test_loader_multiboot.c):
 * little-endian stores and loads for kernel images built in memory field by
 * field, the common ELF64 header and program header, stderr capture, and the
 * small checks and fuzzing helpers both files use. Static inline, so a test
 * program that does not use one of them builds without warnings.
 */
#ifndef KVMSNAP_TEST_ELF_BUILD_H
#define KVMSNAP_TEST_ELF_BUILD_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PT_LOAD 1
#define PF_X	1
#define PF_W	2
#define PF_R	4

/* Little-endian stores into the image under construction, and loads. */
static inline void w16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static inline void w32(uint8_t *p, uint32_t v)
{
	w16(p, v);
	w16(p + 2, v >> 16);
}

static inline void w64(uint8_t *p, uint64_t v)
{
	w32(p, v);
	w32(p + 4, v >> 32);
}

static inline uint32_t r32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t r64(const uint8_t *p)
{
	return r32(p) | (uint64_t)r32(p + 4) << 32;
}

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
static inline void elf64_put_ehdr(uint8_t *img, uint64_t entry, uint16_t phnum)
{
	memcpy(img, "\177ELF", 4);
	img[4] = 2;	   /* ELFCLASS64 */
	img[5] = 1;	   /* little-endian */
	img[6] = 1;	   /* EV_CURRENT */
	w16(img + 16, 2);  /* ET_EXEC */
	w16(img + 18, 62); /* EM_X86_64 */
	w32(img + 20, 1);
	w64(img + 24, entry);
	w64(img + 32, EHDR64_SIZE); /* e_phoff */
	w16(img + 54, PHDR64_SIZE);
	w16(img + 56, phnum);
}

/* Program header i, all but p_align. */
static inline void elf64_put_phdr(uint8_t *img, unsigned int i, const struct phdr64 *ph)
{
	uint8_t *p = img + EHDR64_SIZE + i * PHDR64_SIZE;

	w32(p, ph->type);
	w32(p + 4, ph->flags);
	w64(p + 8, ph->offset);
	w64(p + 16, ph->vaddr);
	w64(p + 24, ph->paddr);
	w64(p + 32, ph->filesz);
	w64(p + 40, ph->memsz);
}

/* Send stderr to a temporary file while the code under test runs. */
struct capture {
	int saved;
	FILE *f;
};

static inline void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->f = tmpfile();
	c->saved = dup(STDERR_FILENO);
	if (c->f)
		dup2(fileno(c->f), STDERR_FILENO);
}

static inline void capture_end(struct capture *c, char *buf, size_t size)
{
	size_t n = 0;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	if (c->f) {
		rewind(c->f);
		n = fread(buf, 1, size - 1, c->f);
		fclose(c->f);
	}
	buf[n] = '\0';
}

/* Send stderr to /dev/null for a fuzz loop; returns the fd to restore it from. */
static inline int quiet_stderr(void)
{
	int devnull = open("/dev/null", O_WRONLY);
	int saved = dup(STDERR_FILENO);

	dup2(devnull, STDERR_FILENO);
	return saved;
}

static inline unsigned int count_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static inline bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		if (*b++)
			return false;
	return true;
}

static inline int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* xorshift64: the fuzz loops' deterministic generator, one state per file. */
static inline uint64_t xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

#endif
