/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A fixed-layout payload written once, as a table of fields: where each
 * field sits in the payload and in the decoded struct, and which values a
 * decoder accepts. The encoder (state_put), the checks (state_check) and the
 * decoder (state_get) all walk the same table, so the two directions cannot
 * drift, and tests/unit/test_state_doc.c holds every table against
 * Documentation/state-records.md.
 */
#ifndef KVMSNAP_VM_STATE_FIELD_H
#define KVMSNAP_VM_STATE_FIELD_H

#include <stddef.h>
#include <stdint.h>

struct error;

enum state_field_kind {
	SF_UINT,     /* little-endian integer of 1, 2, 4 or 8 bytes; the member has that width */
	SF_BYTES,    /* bytes as they are (x87 and XMM registers, the LAPIC page, a FIFO) */
	SF_RESERVED, /* at most 8 bytes, written as zero and refused unless zero; no member */
	SF_TABLE,    /* an element laid out by sub (a segment, a PIT channel) */
};

struct state_table;

struct state_field {
	const char *name;
	uint16_t off;	  /* in the payload, or in the enclosing element */
	uint16_t width;	  /* bytes of one element */
	uint16_t count;	  /* elements, packed: element i at off + i * width */
	uint8_t kind;	  /* enum state_field_kind */
	uint32_t member;  /* offsetof() in the decoded struct */
	uint32_t mstride; /* bytes between elements in the struct */
	uint64_t max;	  /* SF_UINT: the largest valid value */
	uint64_t bits;	  /* SF_UINT: the bits that may be set */
	const struct state_table *sub;
};

struct state_table {
	const char *name; /* what one element is called in messages ("segment"); NULL at the top */
	uint32_t size;	  /* bytes in the payload */
	const struct state_field *f;
	unsigned int n;
};

#define SF_ANY	       UINT64_MAX
#define SF_MSIZE(T, m) sizeof(((T *)0)->m)
/* 0, or a build error unless member m of T has exactly `bytes` bytes. */
#define SF_CHECK_SIZE(T, m, bytes) \
	(0 * sizeof(struct { int ok : SF_MSIZE(T, m) == (bytes) ? 1 : -1; }))

#define SF_FIELD(T, nm, o, w, n, k, m, mx, bt, sb)                                      \
	{                                                                               \
		.name = (nm), .off = (o), .width = (w), .count = (n), .kind = (k),      \
		.member = offsetof(T, m) + SF_CHECK_SIZE(T, m, (w) * (n)),              \
		.mstride = SF_MSIZE(T, m) / (n), .max = (mx), .bits = (bt), .sub = (sb) \
	}
/* An integer member, any value / at most mx / only the bits bt. */
#define SF_U(T, nm, o, w, m)	    SF_FIELD(T, nm, o, w, 1, SF_UINT, m, SF_ANY, SF_ANY, NULL)
#define SF_MAX(T, nm, o, w, m, mx)  SF_FIELD(T, nm, o, w, 1, SF_UINT, m, mx, SF_ANY, NULL)
#define SF_BITS(T, nm, o, w, m, bt) SF_FIELD(T, nm, o, w, 1, SF_UINT, m, SF_ANY, bt, NULL)
/* An array member of n integers of w bytes each. */
#define SF_ARRAY(T, nm, o, w, n, m) SF_FIELD(T, nm, o, w, n, SF_UINT, m, SF_ANY, SF_ANY, NULL)
/* An array member of n blobs of w bytes each. */
#define SF_BLOBS(T, nm, o, w, n, m) SF_FIELD(T, nm, o, w, n, SF_BYTES, m, SF_ANY, SF_ANY, NULL)
/* n elements laid out by table `layout` (w bytes each), from member m (the first, of type E). */
#define SF_SUB(T, nm, o, w, n, m, E, layout)                                                     \
	{                                                                                        \
		.name = (nm), .off = (o), .width = (w), .count = (n), .kind = SF_TABLE,          \
		.member = offsetof(T, m) + SF_CHECK_SIZE(T, m, sizeof(E)), .mstride = sizeof(E), \
		.max = SF_ANY, .bits = SF_ANY, .sub = &(layout)                                  \
	}
#define SF_RSVD(o, w)                                                                          \
	{                                                                                      \
		.name = "reserved", .off = (o), .width = (w), .count = 1, .kind = SF_RESERVED, \
		.max = 0, .bits = SF_ANY                                                       \
	}
#define SF_TABLE_OF(nm, sz, fields)                        \
	{                                                  \
		.name = (nm), .size = (sz), .f = (fields), \
		.n = sizeof(fields) / sizeof((fields)[0])  \
	}

/* Write the whole t->size bytes at p from struct s (reserved bytes as zero). */
void state_put(const struct state_table *t, const void *s, uint8_t *p);
/* Refuse a field out of its range or a reserved field not zero: 0 or -EINVAL. */
int state_check(uint32_t type, const struct state_table *t, const uint8_t *p, struct error *err);
/* Fill the members of s from p; other bytes of s are left as they are. */
void state_get(const struct state_table *t, const uint8_t *p, void *s);
/* The usual decoder: check len == t->size and the fields, zero s (size bytes), fill it. */
int state_decode(uint32_t type, const struct state_table *t, const uint8_t *p, uint32_t len,
		 void *s, size_t size, struct error *err);

/*
 * One record type's layout: its fixed payload (or the head of a variable
 * one), and for a variable one the entries after the head, or the name of
 * the byte area there (XSAVE).
 */
struct vm_state_layout {
	uint32_t type;
	const char *name;
	const struct state_table *fixed;
	const struct state_table *entry; /* NULL: no entries */
	const char *tail;		 /* NULL: no byte area after the head */
};

/* Every record type, in type order; *n is set to the count. */
const struct vm_state_layout *vm_state__layouts(unsigned int *n);

/* The tables of the codecs, for vm_state__layouts(). */
extern const struct state_table regs_layout, sregs_layout, xsave_head_layout, fpu_layout,
    xcrs_head_layout, xcr_layout, msrs_head_layout, msr_layout, lapic_layout, events_layout,
    mp_state_layout, debugregs_layout, progress_layout, pic_layout, ioapic_layout, pit_layout,
    clock_layout, uart_layout, rtc_layout;

#endif
