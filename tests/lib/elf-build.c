// SPDX-License-Identifier: GPL-2.0
/* The helpers of elf-build.h: ELF images built in memory, stderr capture. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "elf-build.h"

void w16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

void w32(uint8_t *p, uint32_t v)
{
	w16(p, v);
	w16(p + 2, v >> 16);
}

void w64(uint8_t *p, uint64_t v)
{
	w32(p, v);
	w32(p + 4, v >> 32);
}

uint32_t r32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t r64(const uint8_t *p)
{
	return r32(p) | (uint64_t)r32(p + 4) << 32;
}

void elf64_put_ehdr(uint8_t *img, uint64_t entry, uint16_t phnum)
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

void elf64_put_phdr(uint8_t *img, unsigned int i, const struct phdr64 *ph)
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

void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->f = tmpfile();
	c->saved = dup(STDERR_FILENO);
	if (c->f)
		dup2(fileno(c->f), STDERR_FILENO);
}

void capture_end(struct capture *c, char *buf, size_t size)
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

int quiet_stderr(void)
{
	int devnull = open("/dev/null", O_WRONLY);
	int saved = dup(STDERR_FILENO);

	dup2(devnull, STDERR_FILENO);
	return saved;
}

bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		if (*b++)
			return false;
	return true;
}

uint64_t xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}
