// SPDX-License-Identifier: GPL-2.0
/* The PC memory map: regions in registry order, each with its ranges. */
#include "pc.h"

#include <errno.h>
#include <string.h>

#include "acpi/acpi.h"
#include "devices/bios.h"
#include "layout.h"
#include "util/util.h"

int pc__check_config(const struct pc_config *cfg, struct error *err)
{
	char a[32], b[32];

	if (cfg->ram_size < MEM_MIN || cfg->ram_size > MEM_MAX ||
	    !IS_ALIGNED(cfg->ram_size, PAGE_SIZE))
		return err_set(err, -EINVAL, "--mem %s: must be a multiple of 4K between %s and %s",
			       format_size(cfg->ram_size, a, sizeof(a)),
			       format_size(MEM_MIN, b, sizeof(b)), "64G");
	if (cfg->vram_size < VRAM_MIN || cfg->vram_size > VGA_VRAM_MAX ||
	    !IS_ALIGNED(cfg->vram_size, 64 * KiB))
		return err_set(err, -EINVAL,
			       "--vram %s: must be a multiple of 64K between 64K and 256M",
			       format_size(cfg->vram_size, a, sizeof(a)));
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > VCPUS_MAX)
		return err_set(err, -EINVAL, "--vcpus %u: must be between 1 and %d", cfg->nr_cpus,
			       VCPUS_MAX);
	return 0;
}

uint64_t pc__low_ram_end(uint64_t ram_size)
{
	return MIN(ram_size, LOW_RAM_LIMIT);
}

static int setup_ram(struct mem_registry *reg, const struct pc_config *cfg, struct error *err)
{
	uint64_t low_end = pc__low_ram_end(cfg->ram_size);
	struct mem_region *r;
	int ret;

	/* Offsets equal guest addresses below 4 GiB; the 640K-1M part stays unmapped. */
	ret = mem__add_region(reg, "pc.ram", cfg->ram_size, MEM_REGION_RAM, &r, err);
	if (!ret)
		ret = mem__add_range(reg, r, 0, LOW_RAM_END, 0, err);
	if (!ret)
		ret = mem__add_range(reg, r, HIGH_RAM_START, low_end - HIGH_RAM_START,
				     HIGH_RAM_START, err);
	if (!ret && cfg->ram_size > LOW_RAM_LIMIT)
		ret = mem__add_range(reg, r, HIGH_MEM_START, cfg->ram_size - LOW_RAM_LIMIT,
				     LOW_RAM_LIMIT, err);
	return ret;
}

static int setup_vga(struct mem_registry *reg, const struct pc_config *cfg, struct error *err)
{
	struct mem_region *r;
	int ret;

	ret = mem__add_region(reg, "vga.vram", cfg->vram_size, 0, &r, err);
	if (!ret)
		ret = mem__add_range(reg, r, VGA_TEXT_GPA, VGA_TEXT_SIZE, 0, err);
	if (!ret)
		ret = mem__add_range(reg, r, VGA_LFB_GPA, cfg->vram_size, 0, err);
	return ret;
}

static int setup_bios(struct mem_registry *reg, struct error *err)
{
	struct mem_region *r;
	int ret;

	ret = mem__add_region(reg, "pc.bios", BIOS_SIZE, MEM_REGION_READONLY, &r, err);
	if (!ret)
		ret = mem__add_range(reg, r, BIOS_GPA, BIOS_SIZE, 0, err);
	/*
	 * Memory in the option-ROM window, as on a PC: Linux scans it 4 bytes
	 * at a time at boot (iBFT, 16448 reads), and without a memory slot
	 * each read is an exit to kvmsnap. Its start is 0xff apart from the
	 * ID string, so no ROM signature is found.
	 */
	if (!ret)
		ret = mem__add_range(reg, r, OPTION_ROM_GPA, OPTION_ROM_SIZE, 0, err);
	if (!ret)
		bios__fill(r->host, r->size);
	return ret;
}

/*
 * The real-mode reset vector, F000:FFF0 = 0xffff0, the last 16 bytes of the
 * ACPI region (on a PC, the top of the BIOS shadow). A hardware-reduced
 * kernel without EFI reboots by jumping there (x86's reboot order after the
 * ACPI reset register: "EFI", which does nothing, then "BIOS"). The stub
 * writes the ACPI reset register, so that way ends the VM as a reboot too:
 *   mov dx, PORT_ACPI_RESET; mov al, ACPI_RESET_VALUE; out dx, al; hlt; jmp $-1
 */
static void put_reset_vector(uint8_t *p)
{
	const uint8_t stub[] = {0xba,
				PORT_ACPI_RESET & 0xff,
				PORT_ACPI_RESET >> 8,
				0xb0,
				ACPI_RESET_VALUE,
				0xee,
				0xf4,
				0xeb,
				0xfd};

	memcpy(p, stub, sizeof(stub));
}

static int setup_acpi(struct mem_registry *reg, const struct pc_config *cfg, struct error *err)
{
	struct acpi_config acfg = {
	    .gpa = ACPI_GPA,
	    .size = ACPI_SIZE,
	    .nr_cpus = cfg->nr_cpus,
	    .lapic_gpa = LAPIC_GPA,
	    .ioapic_gpa = IOAPIC_GPA,
	};
	struct mem_region *r;
	int ret;

	ret = mem__add_region(reg, "acpi.tables", ACPI_SIZE, 0, &r, err);
	if (!ret)
		ret = mem__add_range(reg, r, ACPI_GPA, ACPI_SIZE, 0, err);
	if (!ret)
		ret = acpi__build(r->host, &acfg, err);
	if (!ret)
		put_reset_vector((uint8_t *)r->host + RESET_VECTOR_GPA - ACPI_GPA);
	return ret;
}

int pc__setup_memory(struct mem_registry *reg, const struct pc_config *cfg, struct error *err)
{
	int ret = pc__check_config(cfg, err);

	/* This order is the registry order, and so the image's section order. */
	if (!ret)
		ret = setup_ram(reg, cfg, err);
	if (!ret)
		ret = setup_vga(reg, cfg, err);
	if (!ret)
		ret = setup_bios(reg, err);
	if (!ret)
		ret = setup_acpi(reg, cfg, err);
	return ret;
}
