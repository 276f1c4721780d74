/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kvmsnap PC: which memory regions exist, in which order, and where the
 * guest sees them. Registry order is fixed and is the order of the snapshot
 * image's RAM start section: pc.ram, vga.vram, pc.bios, acpi.tables.
 */
#ifndef KVMSNAP_PC_H
#define KVMSNAP_PC_H

#include <stdint.h>

#include "mem.h"

#define VRAM_DEFAULT (16ULL << 20)
#define VRAM_MIN     (64ULL << 10)

struct pc_config {
	uint64_t ram_size;  /* MEM_MIN..MEM_MAX, 4 KiB multiple */
	uint64_t vram_size; /* VRAM_MIN..VGA_VRAM_MAX, 64 KiB multiple */
	unsigned int nr_cpus;
};

/* Check a configuration. 0, or -EINVAL with *err naming the bad value. */
int pc__check_config(const struct pc_config *cfg, struct error *err);

/*
 * Add the regions and their guest-physical ranges to an empty registry and
 * fill the device memory (firmware, ACPI tables). Needs no KVM. 0 or -errno
 * with *err set.
 */
int pc__setup_memory(struct mem_registry *reg, const struct pc_config *cfg, struct error *err);

/* End of RAM below 4 GiB for this RAM size. */
uint64_t pc__low_ram_end(uint64_t ram_size);

#endif
