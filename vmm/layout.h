/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest-physical memory map of the kvmsnap PC. Documentation/vmm.md has
 * the same table; keep them in step.
 */
#ifndef KVMSNAP_LAYOUT_H
#define KVMSNAP_LAYOUT_H

/* Low memory used by the loaders (all inside pc.ram). */
#define BOOT_GDT_GPA	    0x00001000ULL /* host-built flat GDT for the entry */
#define BOOT_INFO_GPA	    0x00002000ULL /* struct kvmsnap_bootinfo (built-in guests, ELF64) */
#define LINUX_ZERO_PAGE_GPA BOOT_INFO_GPA /* Linux: struct boot_params, 4 KiB */
#define BOOT_CMDLINE_GPA    0x00003000ULL /* kernel command line, up to 4 KiB */
#define MB_INFO_GPA	    0x00004000ULL /* Multiboot info, mmap, module list: up to 0xffff */
#define MB_INFO_END	    0x00010000ULL
#define BOOT_PGTABLE_GPA    0x00010000ULL /* PML4, PDPT, PDs: up to BOOT_PGTABLE_END */
#define BOOT_PGTABLE_END    0x0009f000ULL
#define BOOT_STACK_TOP	    0x0009f000ULL /* ELF64 BSP entry stack (grows down) */
#define KERNEL_MIN_GPA	    0x00100000ULL /* lowest address a kernel segment may load at */

/* The legacy hole and what lives in it. */
#define LOW_RAM_END	 0x000a0000ULL /* 640 KiB */
#define VGA_WINDOW_GPA	 0x000a0000ULL
#define VGA_TEXT_GPA	 0x000b8000ULL /* 80x25 text cells alias the start of vga.vram */
#define VGA_TEXT_SIZE	 0x00008000ULL
#define OPTION_ROM_GPA	 0x000c0000ULL /* option-ROM window: an alias of pc.bios, read-only */
#define OPTION_ROM_SIZE	 0x00020000ULL
#define ACPI_GPA	 0x000e0000ULL /* acpi.tables: RSDP at its start, in the scanned area */
#define ACPI_SIZE	 0x00020000ULL /* 128 KiB */
#define RESET_VECTOR_GPA 0x000ffff0ULL /* F000:FFF0, in acpi.tables: pc.c */
#define HIGH_RAM_START	 0x00100000ULL /* 1 MiB */

/* Below 4 GiB, RAM stops at 3 GiB; the rest goes above 4 GiB. */
#define LOW_RAM_LIMIT  0xc0000000ULL
#define VGA_LFB_GPA    0xe0000000ULL /* the whole of vga.vram, linear */
#define VGA_VRAM_MAX   0x10000000ULL
#define MSGPORT_GPA    0xfe000000ULL /* guest-to-host message port (MMIO) */
#define MSGPORT_SIZE   0x00001000ULL
#define IOAPIC_GPA     0xfec00000ULL
#define LAPIC_GPA      0xfee00000ULL
#define BIOS_SIZE      0x00040000ULL /* 256 KiB */
#define BIOS_GPA       (0x100000000ULL - BIOS_SIZE)
#define HIGH_MEM_START 0x100000000ULL

/* I/O ports. */
#define PORT_COM1	0x3f8
#define PORT_DEBUG_EXIT 0xf4
#define PORT_CMOS	0x70 /* index; 0x71 data */

/* The ACPI registers of devices/power.c, named in the FADT. */
#define PORT_ACPI_SLEEP_CONTROL 0x600
#define PORT_ACPI_SLEEP_STATUS	0x601
#define PORT_ACPI_RESET		0x602
#define ACPI_RESET_VALUE	0x01
#define ACPI_SLP_TYP_S5		5 /* \_S5's SLP_TYP, written in SLP_TYPx bits 4:2 */

#define MEM_MIN	  (2 * 1024 * 1024ULL)
#define MEM_MAX	  (64ULL << 30) /* what the boot page tables can map */
#define VCPUS_MAX 64

#endif
