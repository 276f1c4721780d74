// SPDX-License-Identifier: GPL-2.0
/* A small AML encoder (ACPI 6.x, section 20: ACPI Machine Language). */
#include <string.h>

#include "acpi/aml.h"

#define AML_ZERO_OP	  0x00
#define AML_ONE_OP	  0x01
#define AML_NAME_OP	  0x08
#define AML_BYTE_PREFIX	  0x0a
#define AML_WORD_PREFIX	  0x0b
#define AML_DWORD_PREFIX  0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX  0x0e
#define AML_SCOPE_OP	  0x10
#define AML_BUFFER_OP	  0x11
#define AML_PACKAGE_OP	  0x12
#define AML_DUAL_NAME	  0x2e
#define AML_MULTI_NAME	  0x2f
#define AML_EXT_OP	  0x5b
#define AML_DEVICE_OP	  0x82 /* after AML_EXT_OP */
#define AML_ROOT_CHAR	  '\\'
#define AML_PARENT_CHAR	  '^'
#define AML_PKGLEN_MAX	  0x0fffffff

/* Small resource items: tag byte = type << 3 | length. */
#define AML_RES_IRQ_NOFLAGS 0x22
#define AML_RES_IO	    0x47
#define AML_RES_END	    0x79
#define AML_RES_IO_DECODE16 0x01

size_t aml__pkg_begin(struct acpi_buf *b)
{
	return b->pos;
}

/*
 * PkgLength counts its own bytes. One byte holds up to 63 in bits 0-5;
 * longer forms put the extra byte count in bits 6-7, the low nibble in bits
 * 0-3 (bits 4-5 zero) and the rest in the following bytes.
 */
static unsigned int aml_pkglen_bytes(size_t body)
{
	if (body + 1 <= 0x3f)
		return 1;
	if (body + 2 <= 0xfff)
		return 2;
	if (body + 3 <= 0xfffff)
		return 3;
	return 4;
}

void aml__pkg_end(struct acpi_buf *b, size_t start)
{
	size_t body = b->pos - start;
	unsigned int n = aml_pkglen_bytes(body), i;
	size_t total = body + n;
	uint8_t *p;

	if (b->full)
		return;
	if (total > AML_PKGLEN_MAX) {
		b->full = true;
		return;
	}
	p = acpi_buf__insert(b, start, n);
	if (!p)
		return;
	if (n == 1) {
		p[0] = (uint8_t)total;
		return;
	}
	p[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
	for (i = 1; i < n; i++)
		p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
}

/* One NameSeg: up to four characters, padded with '_'. */
static void aml_name_seg(struct acpi_buf *b, const char *seg, size_t len)
{
	uint8_t *p = acpi_buf__reserve(b, 4);

	if (!p)
		return;
	memset(p, '_', 4);
	memcpy(p, seg, len < 4 ? len : 4);
}

void aml__name_string(struct acpi_buf *b, const char *path)
{
	const char *s, *dot;
	unsigned int segs = 1;

	for (; *path == AML_ROOT_CHAR || *path == AML_PARENT_CHAR; path++)
		acpi_buf__put_u8(b, (uint8_t)*path);
	if (!*path) {
		acpi_buf__put_u8(b, 0); /* NullName */
		return;
	}
	for (s = path; *s; s++)
		segs += *s == '.';
	if (segs == 2) {
		acpi_buf__put_u8(b, AML_DUAL_NAME);
	} else if (segs > 2) {
		acpi_buf__put_u8(b, AML_MULTI_NAME);
		acpi_buf__put_u8(b, (uint8_t)segs);
	}
	for (s = path; s; s = dot ? dot + 1 : NULL) {
		dot = strchr(s, '.');
		aml_name_seg(b, s, dot ? (size_t)(dot - s) : strlen(s));
	}
}

void aml__integer(struct acpi_buf *b, uint64_t v)
{
	if (v == 0) {
		acpi_buf__put_u8(b, AML_ZERO_OP);
	} else if (v == 1) {
		acpi_buf__put_u8(b, AML_ONE_OP);
	} else if (v <= UINT8_MAX) {
		acpi_buf__put_u8(b, AML_BYTE_PREFIX);
		acpi_buf__put_le(b, v, 1);
	} else if (v <= UINT16_MAX) {
		acpi_buf__put_u8(b, AML_WORD_PREFIX);
		acpi_buf__put_le(b, v, 2);
	} else if (v <= UINT32_MAX) {
		acpi_buf__put_u8(b, AML_DWORD_PREFIX);
		acpi_buf__put_le(b, v, 4);
	} else {
		acpi_buf__put_u8(b, AML_QWORD_PREFIX);
		acpi_buf__put_le(b, v, 8);
	}
}

void aml__string(struct acpi_buf *b, const char *s)
{
	acpi_buf__put_u8(b, AML_STRING_PREFIX);
	acpi_buf__put(b, s, strlen(s) + 1);
}

static unsigned int aml_hex(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned int)(c - '0');
	return (unsigned int)((c | 0x20) - 'a' + 10) & 0xf;
}

/* Compressed EISA id: 5 bits per letter ('A' = 1), 4 per digit, big-endian. */
void aml__eisaid(struct acpi_buf *b, const char *id)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 3; i++)
		v = v << 5 | ((uint32_t)(id[i] - '@') & 0x1f);
	for (i = 3; i < 7; i++)
		v = v << 4 | aml_hex(id[i]);
	acpi_buf__put_u8(b, AML_DWORD_PREFIX);
	acpi_buf__put_u8(b, (uint8_t)(v >> 24));
	acpi_buf__put_u8(b, (uint8_t)(v >> 16));
	acpi_buf__put_u8(b, (uint8_t)(v >> 8));
	acpi_buf__put_u8(b, (uint8_t)v);
}

void aml__buffer(struct acpi_buf *b, const void *data, size_t len)
{
	size_t pkg;

	acpi_buf__put_u8(b, AML_BUFFER_OP);
	pkg = aml__pkg_begin(b);
	aml__integer(b, len);
	acpi_buf__put(b, data, len);
	aml__pkg_end(b, pkg);
}

size_t aml__package_begin(struct acpi_buf *b, uint8_t nr_elements)
{
	size_t pkg;

	acpi_buf__put_u8(b, AML_PACKAGE_OP);
	pkg = aml__pkg_begin(b);
	acpi_buf__put_u8(b, nr_elements);
	return pkg;
}

void aml__name(struct acpi_buf *b, const char *seg)
{
	acpi_buf__put_u8(b, AML_NAME_OP);
	aml__name_string(b, seg);
}

size_t aml__scope_begin(struct acpi_buf *b, const char *path)
{
	size_t pkg;

	acpi_buf__put_u8(b, AML_SCOPE_OP);
	pkg = aml__pkg_begin(b);
	aml__name_string(b, path);
	return pkg;
}

size_t aml__device_begin(struct acpi_buf *b, const char *seg)
{
	size_t pkg;

	acpi_buf__put_u8(b, AML_EXT_OP);
	acpi_buf__put_u8(b, AML_DEVICE_OP);
	pkg = aml__pkg_begin(b);
	aml__name_string(b, seg);
	return pkg;
}

void aml__res_io16(struct acpi_buf *b, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	acpi_buf__put_u8(b, AML_RES_IO);
	acpi_buf__put_u8(b, AML_RES_IO_DECODE16);
	acpi_buf__put_u16(b, min);
	acpi_buf__put_u16(b, max);
	acpi_buf__put_u8(b, align);
	acpi_buf__put_u8(b, len);
}

void aml__res_irq_noflags(struct acpi_buf *b, uint16_t mask)
{
	acpi_buf__put_u8(b, AML_RES_IRQ_NOFLAGS);
	acpi_buf__put_u16(b, mask);
}

/* A zero checksum byte means "no checksum", as iasl emits. */
void aml__res_end(struct acpi_buf *b)
{
	acpi_buf__put_u8(b, AML_RES_END);
	acpi_buf__put_u8(b, 0);
}
