// SPDX-License-Identifier: GPL-2.0
/* The boot GDT and identity page tables the vCPUs are entered on. */
#include "loader/loader.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "layout.h"
#include "loader/elf.h"
#include "util/util.h"

/*
 * Flat segments, base 0, limit 4 GiB. The accessed bit is preset so the CPU
 * never writes to the table when a selector is loaded.
 */
/* clang-format off */
static const uint64_t boot_gdt[] = {
	0,
	0x00af9b000000ffffULL, /* BOOT_CS64: P, DPL0, code, L=1 */
	0x00cf93000000ffffULL, /* BOOT_DS: P, DPL0, data RW, D/B=1, G=1 */
	0x00cf9b000000ffffULL, /* BOOT_CS32: P, DPL0, code, D/B=1, G=1 */
};
/* clang-format on */

/* Linux's boot protocol fixes the selectors: __BOOT_CS 0x10, __BOOT_DS 0x18. */
/* clang-format off */
static const uint64_t linux_gdt[] = {
	0,
	0,
	0x00af9b000000ffffULL, /* LINUX_BOOT_CS: P, DPL0, code, L=1 */
	0x00cf93000000ffffULL, /* LINUX_BOOT_DS: P, DPL0, data RW, D/B=1, G=1 */
};
/* clang-format on */

_Static_assert(sizeof(boot_gdt) == BOOT_GDT_SIZE, "BOOT_GDT_SIZE");
_Static_assert(sizeof(linux_gdt) == BOOT_GDT_SIZE, "BOOT_GDT_SIZE");

static int write_gdt(struct mem_registry *mem, const uint64_t *tab, struct error *err)
{
	uint8_t *gdt = mem__gpa_to_host(mem, BOOT_GDT_GPA, BOOT_GDT_SIZE);
	unsigned int i;

	if (!gdt)
		return err_set(err, -EFAULT, "boot GDT: no RAM at 0x%llx", BOOT_GDT_GPA);
	for (i = 0; i < BOOT_GDT_SIZE / 8; i++)
		put_le64(gdt + 8 * i, tab[i]);
	return 0;
}

int boot__build_gdt(struct mem_registry *mem, struct error *err)
{
	return write_gdt(mem, boot_gdt, err);
}

int boot__build_linux_gdt(struct mem_registry *mem, struct error *err)
{
	return write_gdt(mem, linux_gdt, err);
}

/* Ring 3 must reach everything, so U/S is set at every level. */
#define PTE_FLAGS (1ULL /* P */ | 2ULL /* RW */ | 4ULL /* U/S */)
#define PTE_PS	  0x80ULL
#define PD_SPAN	  (1ULL << 30) /* one PD maps 1 GiB with 2 MiB pages */
#define PAGE_2M	  (2ULL << 20)
#define NR_PDPTE  512

/* Mark each GiB of the one PDPT that needs a PD: [0, 4 GiB) and RAM above it. */
static int mark_needed(struct mem_registry *mem, bool need[NR_PDPTE], struct error *err)
{
	struct mem_region *r;
	struct mem_range *rg;
	uint64_t g;

	for (g = 0; g < HIGH_MEM_START / PD_SPAN; g++)
		need[g] = true;
	mem__for_each_region (mem, r) {
		if (!(r->flags & MEM_REGION_RAM))
			continue;
		mem__for_each_range (r, rg) {
			uint64_t end = rg->gpa + rg->size;

			if (end <= HIGH_MEM_START)
				continue;
			if ((end - 1) / PD_SPAN >= NR_PDPTE)
				return err_set(err, -ENOSPC,
					       "boot page tables: RAM at 0x%llx is above 512 GiB",
					       (unsigned long long)rg->gpa);
			for (g = MAX(rg->gpa, HIGH_MEM_START) / PD_SPAN; g <= (end - 1) / PD_SPAN;
			     g++)
				need[g] = true;
		}
	}
	return 0;
}

static void map_2m(uint8_t *pd, uint64_t gpa)
{
	put_le64(pd + 8 * ((gpa / PAGE_2M) % 512), gpa | PTE_FLAGS | PTE_PS);
}

int boot__build_pagetables(struct mem_registry *mem, struct error *err)
{
	uint64_t pd_gpa[NR_PDPTE] = {0};
	bool need[NR_PDPTE] = {false};
	uint64_t g, a, nr_pages = 2, bytes;
	struct mem_region *r;
	struct mem_range *rg;
	uint8_t *base;
	int ret;

	ret = mark_needed(mem, need, err);
	if (ret)
		return ret;
	for (g = 0; g < NR_PDPTE; g++)
		if (need[g])
			pd_gpa[g] = BOOT_PGTABLE_GPA + PAGE_SIZE * nr_pages++;
	bytes = nr_pages * PAGE_SIZE;
	if (bytes > BOOT_PGTABLE_END - BOOT_PGTABLE_GPA)
		return err_set(err, -ENOSPC, "boot page tables: %llu pages do not fit below 0x%llx",
			       (unsigned long long)nr_pages, BOOT_PGTABLE_END);
	base = mem__gpa_to_host(mem, BOOT_PGTABLE_GPA, bytes);
	if (!base)
		return err_set(err, -EFAULT, "boot page tables: no RAM at 0x%llx",
			       BOOT_PGTABLE_GPA);
	memset(base, 0, bytes);

	/* PML4 in the first page, the PDPT in the second, then the PDs. */
	put_le64(base, (BOOT_PGTABLE_GPA + PAGE_SIZE) | PTE_FLAGS);
	for (g = 0; g < NR_PDPTE; g++)
		if (pd_gpa[g])
			put_le64(base + PAGE_SIZE + 8 * g, pd_gpa[g] | PTE_FLAGS);

	/* All of [0, 4 GiB), then exactly the 2 MiB pages that hold RAM above it. */
	for (a = 0; a < HIGH_MEM_START; a += PAGE_2M)
		map_2m(base + (pd_gpa[a / PD_SPAN] - BOOT_PGTABLE_GPA), a);
	mem__for_each_region (mem, r) {
		if (!(r->flags & MEM_REGION_RAM))
			continue;
		mem__for_each_range (r, rg) {
			uint64_t end = ALIGN_UP(rg->gpa + rg->size, PAGE_2M);

			for (a = ALIGN_DOWN(MAX(rg->gpa, HIGH_MEM_START), PAGE_2M); a < end;
			     a += PAGE_2M)
				map_2m(base + (pd_gpa[a / PD_SPAN] - BOOT_PGTABLE_GPA), a);
		}
	}
	return 0;
}
