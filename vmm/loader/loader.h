/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest loaders. They write into guest memory only through the registry
 * (mem__write / mem__gpa_to_host), never below KERNEL_MIN_GPA except for the
 * boot structures of layout.h, and fill a struct boot_state that the vCPUs
 * are started from. Every malformed input gets a negative errno (-ENOEXEC
 * for a bad file) and one line in *err that says what is wrong
 * ("kernel FILE: ..."); nothing prints or exits the process.
 */
#ifndef KVMSNAP_LOADER_H
#define KVMSNAP_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm.h"
#include "lib/error.h"
#include "mem.h"

/* Where a bzImage's compressed kernel is unpacked (run --decompress). */
enum kernel_unpack {
	UNPACK_HOST,  /* by kvmsnap, when it knows the codec; else as UNPACK_GUEST */
	UNPACK_GUEST, /* by the kernel's own decompressor, in the guest */
};

/* What loader__load_linux() did with the payload: for -v, benchmarks and tests. */
struct kernel_report {
	const char *codec;		/* "xz", "gzip", ... or "unknown" */
	bool unpacked;			/* on the host: the vmlinux ELF was loaded */
	bool cached;			/* ... from the kernel cache, not decoded */
	bool stored;			/* ... decoded and stored in the kernel cache */
	uint64_t unpacked_bytes;	/* the ELF's size when unpacked */
	char cache_note[ERROR_MSG_MAX]; /* why the cache was not used, or "" */
};

struct kernel_args {
	const char *path;	    /* kernel file */
	const char *append;	    /* --append, may be NULL */
	const char *const *initrds; /* --initrd files (Multiboot modules), may be NULL */
	unsigned int nr_initrds;
	enum kernel_unpack unpack;
	const char *cache_dir;	      /* the kernel cache (loader/kcache.h), or NULL */
	struct kernel_report *report; /* filled by the Linux loader when not NULL */
};

/* Kernel files larger than this (or than guest RAM) are refused before reading. */
#define KERNEL_FILE_MAX (64ULL << 20)

/*
 * Load a kernel file: a Multiboot v1 kernel (header in its first 8 KiB) is
 * entered as the Multiboot spec says; otherwise an ELF64 executable is
 * entered in 64-bit mode. Also builds the boot GDT and page tables.
 * The loaders set every field of *boot but all_cpus, which is the caller's.
 */
int loader__load_kernel(struct mem_registry *mem, const struct kernel_args *args,
			struct boot_state *boot, struct error *err);

/*
 * The format detection of loader__load_kernel() on a kernel already in
 * memory (args->path names it in messages): Multiboot first, then ELF64.
 */
int loader__load_image(struct mem_registry *mem, const struct kernel_args *args, const void *buf,
		       size_t len, struct boot_state *boot, struct error *err);

/*
 * Load an ELF64 x86-64 executable from memory (name is used in messages).
 * Sets boot->mode = BOOT_LONG64, entry and image_end; builds the boot GDT and
 * the identity page tables.
 */
int loader__load_elf64(struct mem_registry *mem, const char *name, const void *buf, size_t len,
		       struct boot_state *boot, struct error *err);

/*
 * Load a Linux bzImage (vmm/loader/linux.h): the kernel, args->initrds
 * concatenated as its initrd, the command line (args->append, or
 * LINUX_DEFAULT_CMDLINE) and the zero page. Sets boot->mode = BOOT_LINUX64
 * with RSI at the zero page. With UNPACK_HOST and a payload codec that
 * unpack__supported(), the payload is unpacked here and its vmlinux ELF
 * placed at the physical addresses it was linked for, entered at its
 * startup_64 (as Firecracker enters a vmlinux); with args->cache_dir the
 * unpacked kernel is looked up there first and stored there after. A cache
 * that cannot be used only costs time: it never fails the load. Otherwise
 * the compressed kernel goes at its preferred address and its decompressor
 * runs first.
 */
int loader__load_linux(struct mem_registry *mem, const struct kernel_args *args, const void *buf,
		       size_t len, struct boot_state *boot, struct error *err);

/*
 * Parse and load a Multiboot v1 kernel from memory: an ELF32 (or ELF64, as
 * GRUB allows) image, or the a.out kludge of header flag bit 16. args->initrds
 * become the modules, page-aligned after the kernel; the information
 * structure goes at MB_INFO_GPA. Returns -ENOENT if buf has no Multiboot
 * header in its first 8 KiB, so the caller can try another format.
 */
int loader__load_multiboot(struct mem_registry *mem, const struct kernel_args *args,
			   const void *buf, size_t len, struct boot_state *boot, struct error *err);

/*
 * Find the Multiboot v1 header: 4-byte aligned in the first 8 KiB, with a
 * valid checksum. 0 and its offset; -ENOENT if there is none; -EBADMSG (and
 * the offset) if the only candidates have the magic but a bad checksum.
 */
#define MULTIBOOT_SEARCH 8192
int loader__find_multiboot(const void *buf, size_t len, size_t *offset);

/* Flat boot GDT at BOOT_GDT_GPA: 0x08 code64, 0x10 data, 0x18 code32. */
#define BOOT_CS64     0x08
#define BOOT_DS	      0x10
#define BOOT_CS32     0x18
#define BOOT_GDT_SIZE 32 /* bytes: the GDTR limit is BOOT_GDT_SIZE - 1 */
int boot__build_gdt(struct mem_registry *mem, struct error *err);

/* The GDT of Linux's 64-bit boot protocol: __BOOT_CS 0x10 (code64), __BOOT_DS 0x18. */
#define LINUX_BOOT_CS 0x10
#define LINUX_BOOT_DS 0x18
int boot__build_linux_gdt(struct mem_registry *mem, struct error *err);

/*
 * Identity-map [0, 4 GiB) and all RAM above it with 2 MiB pages, U/S and
 * R/W set at every level, at BOOT_PGTABLE_GPA. 0, or -ENOSPC/-EFAULT with
 * *err set.
 */
int boot__build_pagetables(struct mem_registry *mem, struct error *err);

#endif
