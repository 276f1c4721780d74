// SPDX-License-Identifier: GPL-2.0
/*
 * The table-driven codec of vmm/state/field.h, the record types and their
 * layouts, and the checks that every payload decoder shares.
 */
#include "state/state.h"
#include "state/field.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct vm_state_layout layouts[] = {
    {VM_STATE_REGS, "REGS", &regs_layout, NULL, NULL},
    {VM_STATE_SREGS, "SREGS", &sregs_layout, NULL, NULL},
    {VM_STATE_XSAVE, "XSAVE", &xsave_head_layout, NULL, "area"},
    {VM_STATE_FPU, "FPU", &fpu_layout, NULL, NULL},
    {VM_STATE_XCRS, "XCRS", &xcrs_head_layout, &xcr_layout, NULL},
    {VM_STATE_MSRS, "MSRS", &msrs_head_layout, &msr_layout, NULL},
    {VM_STATE_LAPIC, "LAPIC", &lapic_layout, NULL, NULL},
    {VM_STATE_EVENTS, "EVENTS", &events_layout, NULL, NULL},
    {VM_STATE_MP_STATE, "MP_STATE", &mp_state_layout, NULL, NULL},
    {VM_STATE_DEBUGREGS, "DEBUGREGS", &debugregs_layout, NULL, NULL},
    {VM_STATE_PROGRESS, "PROGRESS", &progress_layout, NULL, NULL},
    {VM_STATE_PIC_MASTER, "PIC_MASTER", &pic_layout, NULL, NULL},
    {VM_STATE_PIC_SLAVE, "PIC_SLAVE", &pic_layout, NULL, NULL},
    {VM_STATE_IOAPIC, "IOAPIC", &ioapic_layout, NULL, NULL},
    {VM_STATE_PIT, "PIT", &pit_layout, NULL, NULL},
    {VM_STATE_CLOCK, "CLOCK", &clock_layout, NULL, NULL},
    {VM_STATE_UART, "UART", &uart_layout, NULL, NULL},
    {VM_STATE_RTC, "RTC", &rtc_layout, NULL, NULL},
};

const struct vm_state_layout *vm_state__layouts(unsigned int *n)
{
	*n = sizeof(layouts) / sizeof(layouts[0]);
	return layouts;
}

const char *vm_state__type_name(uint32_t type)
{
	size_t i;

	for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].type == type)
			return layouts[i].name;
	return "?";
}

int vm_state__check_len(uint32_t type, uint32_t len, uint32_t want, struct error *err)
{
	if (len == want)
		return 0;
	return err_set(err, -EINVAL, "%s record: payload is %u bytes, expected %u",
		       vm_state__type_name(type), len, want);
}

int vm_state__check_max(uint32_t type, const char *field, uint64_t v, uint64_t max,
			struct error *err)
{
	if (v <= max)
		return 0;
	return err_set(err, -EINVAL, "%s record: %s is %llu, at most %llu is valid",
		       vm_state__type_name(type), field, (unsigned long long)v,
		       (unsigned long long)max);
}

static uint64_t get_le(const uint8_t *p, unsigned int width)
{
	uint64_t v = 0;

	while (width--)
		v = v << 8 | p[width];
	return v;
}

static void put_le(uint8_t *p, unsigned int width, uint64_t v)
{
	unsigned int i;

	for (i = 0; i < width; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* A member of 1, 2, 4 or 8 bytes, read and written at its own width. */
static uint64_t load(const uint8_t *m, unsigned int width)
{
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	switch (width) {
	case 1:
		return *m;
	case 2:
		memcpy(&u16, m, 2);
		return u16;
	case 4:
		memcpy(&u32, m, 4);
		return u32;
	default:
		memcpy(&u64, m, 8);
		return u64;
	}
}

static void store(uint8_t *m, unsigned int width, uint64_t v)
{
	uint16_t u16 = (uint16_t)v;
	uint32_t u32 = (uint32_t)v;

	switch (width) {
	case 1:
		*m = (uint8_t)v;
		break;
	case 2:
		memcpy(m, &u16, 2);
		break;
	case 4:
		memcpy(m, &u32, 4);
		break;
	default:
		memcpy(m, &v, 8);
	}
}

static void copy(const struct state_table *t, uint8_t *s, uint8_t *p, bool put);

/* One element between member m and payload bytes q, to q if put, else to m. */
static void copy_element(const struct state_field *f, uint8_t *m, uint8_t *q, bool put)
{
	if (f->kind == SF_UINT && put)
		put_le(q, f->width, load(m, f->width));
	else if (f->kind == SF_UINT)
		store(m, f->width, get_le(q, f->width));
	else if (f->kind == SF_BYTES)
		memcpy(put ? q : m, put ? m : q, f->width);
	else if (f->kind == SF_TABLE)
		copy(f->sub, m, q, put);
}

/* The one walk of a table for both directions, so that they cannot differ. */
static void copy(const struct state_table *t, uint8_t *s, uint8_t *p, bool put)
{
	const struct state_field *f;
	unsigned int i;

	for (f = t->f; f < t->f + t->n; f++)
		for (i = 0; i < f->count; i++)
			copy_element(f, s + f->member + i * f->mstride, p + f->off + i * f->width,
				     put);
}

void state_put(const struct state_table *t, const void *s, uint8_t *p)
{
	memset(p, 0, t->size);
	copy(t, (uint8_t *)s, p, true); /* only reads s */
}

void state_get(const struct state_table *t, const uint8_t *p, void *s)
{
	copy(t, s, (uint8_t *)p, false); /* only reads p */
}

static int check_field(uint32_t type, const char *prefix, const struct state_field *f,
		       const uint8_t *q, struct error *err)
{
	uint64_t v = get_le(q, f->width);
	char name[64];

	snprintf(name, sizeof(name), "%s%s%s", prefix ? prefix : "", prefix ? " " : "", f->name);
	if (v & ~f->bits)
		return err_set(err, -EINVAL, "%s record: %s 0x%llx has bits outside 0x%llx",
			       vm_state__type_name(type), name, (unsigned long long)v,
			       (unsigned long long)f->bits);
	return vm_state__check_max(type, name, v, f->max, err);
}

int state_check(uint32_t type, const struct state_table *t, const uint8_t *p, struct error *err)
{
	const struct state_field *f;
	unsigned int i;
	int ret = 0;

	for (f = t->f; f < t->f + t->n && !ret; f++) {
		for (i = 0; i < f->count && !ret; i++) {
			const uint8_t *q = p + f->off + i * f->width;

			if (f->kind == SF_TABLE)
				ret = state_check(type, f->sub, q, err);
			else if (f->kind != SF_BYTES)
				ret = check_field(type, t->name, f, q, err);
		}
	}
	return ret;
}

int state_decode(uint32_t type, const struct state_table *t, const uint8_t *p, uint32_t len,
		 void *s, size_t size, struct error *err)
{
	int ret = vm_state__check_len(type, len, t->size, err);

	if (!ret)
		ret = state_check(type, t, p, err);
	if (ret)
		return ret;
	memset(s, 0, size);
	state_get(t, p, s);
	return 0;
}
