/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small AML encoder, enough for a static DSDT. Packages (Scope, Device,
 * Buffer) are written in place: *_begin returns the offset where the
 * PkgLength goes, and aml__pkg_end inserts it once the body size is known.
 */
#ifndef KVMSNAP_ACPI_AML_H
#define KVMSNAP_ACPI_AML_H

#include "acpi/buf.h"

size_t aml__pkg_begin(struct acpi_buf *b);
void aml__pkg_end(struct acpi_buf *b, size_t start);

/* "\\_SB", "FOO.BAR": a root or relative path of 1..4-char segments. */
void aml__name_string(struct acpi_buf *b, const char *path);
/* The shortest of ZeroOp, OneOp, Byte/Word/DWord/QWordConst. */
void aml__integer(struct acpi_buf *b, uint64_t v);
void aml__string(struct acpi_buf *b, const char *s);
/* EisaId ("PNP0501"): three letters and four hex digits, as a DWordConst. */
void aml__eisaid(struct acpi_buf *b, const char *id);
/* Buffer () { data }. */
void aml__buffer(struct acpi_buf *b, const void *data, size_t len);

/* Package (n) { ...: n elements follow; close it with aml__pkg_end. */
size_t aml__package_begin(struct acpi_buf *b, uint8_t nr_elements);

/* Name (seg, ...): the value follows with one of the calls above. */
void aml__name(struct acpi_buf *b, const char *seg);
/* Scope (path) { and Device (seg) {: close both with aml__pkg_end. */
size_t aml__scope_begin(struct acpi_buf *b, const char *path);
size_t aml__device_begin(struct acpi_buf *b, const char *seg);

/* Resource descriptors for a ResourceTemplate (build it, then aml__buffer). */
void aml__res_io16(struct acpi_buf *b, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml__res_irq_noflags(struct acpi_buf *b, uint16_t mask);
void aml__res_end(struct acpi_buf *b);

#endif
