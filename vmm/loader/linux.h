/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The x86 Linux boot protocol (the kernel's Documentation/arch/x86/boot.rst):
 * the bzImage setup header, the zero page (struct boot_params) with its E820
 * map, and the 64-bit entry. Offsets are the protocol's; the zero page is
 * written byte-wise, never as a C struct.
 */
#ifndef KVMSNAP_LOADER_LINUX_H
#define KVMSNAP_LOADER_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "mem.h"

/* Setup header fields: file offsets, equal to their zero-page offsets. */
#define BZ_SETUP_SECTS	    0x1f1
#define BZ_SYSSIZE	    0x1f4
#define BZ_BOOT_FLAG	    0x1fe /* 0xaa55 */
#define BZ_JUMP		    0x200 /* the byte at 0x201 is the header's length past 0x202 */
#define BZ_HEADER	    0x202 /* "HdrS" */
#define BZ_VERSION	    0x206
#define BZ_TYPE_OF_LOADER   0x210
#define BZ_LOADFLAGS	    0x211
#define BZ_CODE32_START	    0x214
#define BZ_RAMDISK_IMAGE    0x218
#define BZ_RAMDISK_SIZE	    0x21c
#define BZ_CMD_LINE_PTR	    0x228
#define BZ_INITRD_ADDR_MAX  0x22c
#define BZ_KERNEL_ALIGNMENT 0x230
#define BZ_RELOCATABLE	    0x234
#define BZ_XLOADFLAGS	    0x236
#define BZ_CMDLINE_SIZE	    0x238
#define BZ_PAYLOAD_OFFSET   0x248 /* from the start of the protected-mode part */
#define BZ_PAYLOAD_LENGTH   0x24c
#define BZ_PREF_ADDRESS	    0x258
#define BZ_INIT_SIZE	    0x260

/* The rest of the zero page. */
#define ZP_ACPI_RSDP_ADDR    0x070
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE  0x0c4
#define ZP_EXT_CMD_LINE_PTR  0x0c8
#define ZP_E820_ENTRIES	     0x1e8
#define ZP_E820_TABLE	     0x2d0
#define ZP_SIZE		     4096
#define E820_ENTRY_SIZE	     20 /* addr u64, size u64, type u32 */
#define E820_MAX_ENTRIES     128

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

#define BZ_MIN_VERSION	    0x020c /* 2.12: xloadflags */
#define XLF_KERNEL_64	    (1u << 0)
#define LOADER_TYPE_UNKNOWN 0xff
#define LINUX_ENTRY64_OFF   0x200	 /* 64-bit entry: load address + 0x200 */
#define KERNEL_UNPACKED_MAX (1ULL << 30) /* a vmlinux unpacked on the host */

/*
 * The command line when --append is not given. There is no PCI: pci=off
 * spares the kernel's early scan of 256 buses through ports 0xcf8/0xcfc,
 * about 33,000 exits to kvmsnap.
 */
#define LINUX_DEFAULT_CMDLINE "console=ttyS0 pci=off"

/* What the loader needs from a setup header that bzimage__parse() accepted. */
struct bzimage {
	uint16_t version;
	size_t setup_bytes;  /* (setup_sects + 1) * 512: the real-mode part */
	size_t kernel_bytes; /* syssize * 16: the protected-mode part that follows */
	size_t hdr_end;	     /* file offset just past the setup header */
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint32_t cmdline_size;
	uint64_t pref_address;
	uint32_t init_size;			 /* bytes the kernel needs from its load address */
	uint32_t payload_offset, payload_length; /* the compressed vmlinux, as the header says */
};

/* Whether buf looks like a Linux boot image: the HdrS magic or the 0xaa55 boot flag. */
int bzimage__detect(const void *buf, size_t len);

/*
 * Check a setup header: magic, protocol >= 2.12, relocatable, a 64-bit
 * entry (XLF_KERNEL_64), the file as long as the header says. 0, or
 * -ENOEXEC with *err naming the cause ("kernel NAME: ...").
 */
int bzimage__parse(const void *buf, size_t len, const char *name, struct bzimage *bz,
		   struct error *err);

/* Where the loader placed everything, for the zero page. */
struct linux_layout {
	uint64_t load_gpa; /* the protected-mode kernel */
	uint64_t initrd_gpa, initrd_size;
	uint64_t cmdline_gpa;
	uint64_t rsdp_gpa;
};

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

/*
 * The E820 map from the region registry, sorted: RAM ranges as RAM, the
 * ACPI tables as ACPI data, every other region and the rest of the legacy
 * hole [640 KiB, 1 MiB) reserved; neighbours of one type merged. The number
 * of entries (at most max).
 */
unsigned int e820__build(struct mem_registry *mem, struct e820_entry *e, unsigned int max);

/*
 * Fill a zero page (ZP_SIZE bytes): zeroed, the file's setup header copied
 * in, then the loader's fields (type_of_loader, command line, initrd, RSDP,
 * E820) set.
 */
void linux__build_zero_page(uint8_t *zp, const void *kernel, const struct bzimage *bz,
			    struct mem_registry *mem, const struct linux_layout *l);

#endif
