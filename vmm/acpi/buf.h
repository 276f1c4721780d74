/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A bounded byte writer for the ACPI builder. A write that does not fit marks
 * the buffer full and is dropped, so nothing lands past size and the caller
 * checks for -ENOSPC once at the end. Integers are stored little-endian.
 */
#ifndef KVMSNAP_ACPI_BUF_H
#define KVMSNAP_ACPI_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/le.h"
#include <string.h>

struct acpi_buf {
	uint8_t *base;
	size_t size;
	size_t pos;
	bool full;
};

static inline void put_le(uint8_t *p, uint64_t v, unsigned int bytes)
{
	while (bytes--) {
		*p++ = (uint8_t)v;
		v >>= 8;
	}
}

/* Claim len zeroed bytes at the end, or NULL (and full) if they do not fit. */
static inline uint8_t *acpi_buf__reserve(struct acpi_buf *b, size_t len)
{
	uint8_t *p;

	if (b->full || len > b->size - b->pos) {
		b->full = true;
		return NULL;
	}
	p = b->base + b->pos;
	memset(p, 0, len);
	b->pos += len;
	return p;
}

/* Open len zeroed bytes at off (<= pos), moving what follows up. */
static inline uint8_t *acpi_buf__insert(struct acpi_buf *b, size_t off, size_t len)
{
	uint8_t *p;

	if (!acpi_buf__reserve(b, len))
		return NULL;
	p = b->base + off;
	memmove(p + len, p, b->pos - len - off);
	memset(p, 0, len);
	return p;
}

static inline void acpi_buf__put(struct acpi_buf *b, const void *src, size_t len)
{
	uint8_t *p = acpi_buf__reserve(b, len);

	if (p)
		memcpy(p, src, len);
}

static inline void acpi_buf__put_le(struct acpi_buf *b, uint64_t v, unsigned int bytes)
{
	uint8_t *p = acpi_buf__reserve(b, bytes);

	if (p)
		put_le(p, v, bytes);
}

static inline void acpi_buf__put_u8(struct acpi_buf *b, uint8_t v)
{
	acpi_buf__put_le(b, v, 1);
}

static inline void acpi_buf__put_u16(struct acpi_buf *b, uint16_t v)
{
	acpi_buf__put_le(b, v, 2);
}

static inline void acpi_buf__put_u32(struct acpi_buf *b, uint32_t v)
{
	acpi_buf__put_le(b, v, 4);
}

static inline void acpi_buf__align(struct acpi_buf *b, size_t align)
{
	acpi_buf__reserve(b, (align - b->pos % align) % align);
}

#endif
