// SPDX-License-Identifier: GPL-2.0
/* The E820 memory map of the zero page, derived from the region registry. */
#include <string.h>

#include "layout.h"
#include "loader/linux.h"
#include "util/util.h"

#define MAX_GAPS 8 /* in the legacy hole */

static uint32_t e820_type(const struct mem_region *r)
{
	if (r->flags & MEM_REGION_RAM)
		return E820_RAM;
	if (!strcmp(r->name, "acpi.tables"))
		return E820_ACPI;
	return E820_RESERVED;
}

/* Insert sorted by address; drops what does not fit. */
static void e820_insert(struct e820_entry *e, unsigned int *n, unsigned int max,
			struct e820_entry x)
{
	unsigned int j;

	if (*n >= max || !x.size)
		return;
	for (j = (*n)++; j > 0 && e[j - 1].addr > x.addr; j--)
		e[j] = e[j - 1];
	e[j] = x;
}

unsigned int e820__build(struct mem_registry *mem, struct e820_entry *e, unsigned int max)
{
	struct e820_entry tmp[MEM_MAX_REGIONS * MEM_MAX_RANGES + MAX_GAPS];
	struct e820_entry gaps[MAX_GAPS];
	unsigned int n = 0, out = 0, nr_gaps = 0, i;
	uint64_t hole = LOW_RAM_END;
	struct mem_region *r;
	struct mem_range *rg;

	mem__for_each_region (mem, r)
		mem__for_each_range (r, rg)
			e820_insert(tmp, &n, ARRAY_SIZE(tmp),
				    (struct e820_entry){rg->gpa, rg->size, e820_type(r)});

	/*
	 * The legacy hole is the PC's, whether or not a region is there: what
	 * no range covers in [640 KiB, 1 MiB) is reserved too, so the kernel
	 * never takes it for free address space. The gaps are found first,
	 * then inserted, so that the scan never walks a shifting array.
	 */
	for (i = 0; i < n && hole < HIGH_RAM_START; i++) {
		if (tmp[i].addr + tmp[i].size <= hole)
			continue;
		if (tmp[i].addr > hole && nr_gaps < MAX_GAPS)
			gaps[nr_gaps++] = (struct e820_entry){
			    hole, MIN(tmp[i].addr, HIGH_RAM_START) - hole, E820_RESERVED};
		hole = tmp[i].addr + tmp[i].size;
	}
	if (hole < HIGH_RAM_START && nr_gaps < MAX_GAPS)
		gaps[nr_gaps++] = (struct e820_entry){hole, HIGH_RAM_START - hole, E820_RESERVED};
	for (i = 0; i < nr_gaps; i++)
		e820_insert(tmp, &n, ARRAY_SIZE(tmp), gaps[i]);

	for (i = 0; i < n; i++) {
		struct e820_entry *p = out ? &e[out - 1] : NULL;

		if (p && p->type == tmp[i].type && p->addr + p->size == tmp[i].addr) {
			p->size += tmp[i].size;
			continue;
		}
		if (out == max)
			break;
		e[out++] = tmp[i];
	}
	return out;
}
