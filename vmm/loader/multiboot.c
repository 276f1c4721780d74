// SPDX-License-Identifier: GPL-2.0
/*
 * Multiboot v1 kernels (the 0.6.96 specification): an ELF image or the a.out
 * kludge, modules from --initrd, and the information structure at
 * MB_INFO_GPA. The kernel is entered in 32-bit protected mode, paging off,
 * with EAX = 0x2BADB002 and EBX = the information structure.
 */
#include "loader/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "loader/elf.h"
#include "pc.h"
#include "util/util.h"

#define MB_HEADER_MAGIC 0x1badb002u
#define MB_BOOT_MAGIC	0x2badb002u

/* Header flags: bits 0-15 are requirements, bits 16-31 optional features. */
#define MB_PAGE_ALIGN  (1u << 0) /* modules page-aligned: always done */
#define MB_MEMORY_INFO (1u << 1) /* mem_* and mmap: always given */
#define MB_VIDEO_MODE  (1u << 2)
#define MB_AOUT_KLUDGE (1u << 16)
#define MB_REQUIRED    0x0000ffffu
#define MB_SUPPORTED   (MB_PAGE_ALIGN | MB_MEMORY_INFO)

/* Information structure: flags and field offsets. */
#define MBI_MEM		(1u << 0)
#define MBI_CMDLINE	(1u << 2)
#define MBI_MODS	(1u << 3)
#define MBI_MMAP	(1u << 6)
#define MBI_LOADER_NAME (1u << 9)
#define MBI_O_FLAGS	0
#define MBI_O_MEM_LOWER 4
#define MBI_O_MEM_UPPER 8
#define MBI_O_CMDLINE	16
#define MBI_O_MODS_CNT	20
#define MBI_O_MODS_ADDR 24
#define MBI_O_MMAP_LEN	44
#define MBI_O_MMAP_ADDR 48
#define MBI_O_LDR_NAME	64
#define MBI_SIZE	116 /* up to the framebuffer fields, left zero */
#define MB_MOD_SIZE	16  /* mod_start, mod_end, string, reserved */
#define MB_MMAP_SIZE	24  /* size (20, not counting itself), base, length, type */

#define MB_MMAP_RAM	 1
#define MB_MMAP_RESERVED 2
#define MB_MMAP_ACPI	 3

int loader__find_multiboot(const void *buf, size_t len, size_t *offset)
{
	size_t off, end = MIN(len, (size_t)MULTIBOOT_SEARCH);
	const uint8_t *p = buf;
	int ret = -ENOENT;

	for (off = 0; off + 12 <= end; off += 4) {
		uint32_t sum;

		if (get_le32(p + off) != MB_HEADER_MAGIC)
			continue;
		sum = MB_HEADER_MAGIC + get_le32(p + off + 4) + get_le32(p + off + 8);
		if (!sum) {
			*offset = off;
			return 0;
		}
		if (ret == -ENOENT) {
			*offset = off;
			ret = -EBADMSG;
		}
	}
	return ret;
}

static int check_flags(const char *name, uint32_t flags, struct error *err)
{
	if (flags & MB_VIDEO_MODE)
		return err_set(err, -ENOEXEC,
			       "kernel %s: Multiboot video mode (flags bit 2) is not supported",
			       name);
	if (flags & MB_REQUIRED & ~MB_SUPPORTED)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: Multiboot header flags 0x%08x: unsupported required bits 0x%04x",
		    name, flags, flags & MB_REQUIRED & ~MB_SUPPORTED);
	return 0;
}

/*
 * The a.out kludge: the header's address fields say where the file goes.
 * header_addr is where the header itself lands, which ties file offsets to
 * addresses. It becomes a one-segment image so it loads like ELF.
 */
static int parse_aout(struct mem_registry *mem, const char *name, const uint8_t *p, size_t len,
		      size_t hoff, struct elf_image *img, struct error *err)
{
	uint32_t header_addr, load_addr, load_end, bss_end, entry;
	uint64_t start, filesz, memsz;
	int ret;

	if (len - hoff < 32)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: Multiboot header at 0x%zx is cut off by the end of the file", name,
		    hoff);
	header_addr = get_le32(p + hoff + 12);
	load_addr = get_le32(p + hoff + 16);
	load_end = get_le32(p + hoff + 20);
	bss_end = get_le32(p + hoff + 24);
	entry = get_le32(p + hoff + 28);

	if (load_addr > header_addr || header_addr - load_addr > hoff)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: Multiboot load_addr 0x%x is before the file (header_addr 0x%x)",
		    name, load_addr, header_addr);
	start = hoff - (header_addr - load_addr);
	filesz = load_end ? (uint64_t)load_end - load_addr : len - start;
	if (load_end && load_end < load_addr)
		return err_set(err, -ENOEXEC,
			       "kernel %s: Multiboot load_end_addr 0x%x is below load_addr 0x%x",
			       name, load_end, load_addr);
	if (filesz > len - start)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: Multiboot load_end_addr 0x%x is past the end of the file", name,
		    load_end);
	memsz = filesz;
	if (bss_end) {
		if (bss_end < load_addr + filesz)
			return err_set(
			    err, -ENOEXEC,
			    "kernel %s: Multiboot bss_end_addr 0x%x is below load_end_addr", name,
			    bss_end);
		memsz = bss_end - load_addr;
	}
	ret = loader__check_span(mem, name, "Multiboot a.out kludge", load_addr, memsz, err);
	if (ret)
		return ret;
	if (entry < load_addr || entry - load_addr >= filesz)
		return err_set(err, -ENOEXEC,
			       "kernel %s: Multiboot entry_addr 0x%x is outside the loaded image",
			       name, entry);

	memset(img, 0, sizeof(*img));
	img->bits = 32;
	img->entry = entry;
	img->image_end = ALIGN_UP(load_addr + memsz, PAGE_SIZE);
	img->nr_loads = 1;
	img->loads[0].flags = ELF_PF_X;
	img->loads[0].offset = start;
	img->loads[0].vaddr = load_addr;
	img->loads[0].paddr = load_addr;
	img->loads[0].filesz = filesz;
	img->loads[0].memsz = memsz;
	return 0;
}

/* ELF32, or ELF64 as GRUB allows, as long as all of it is below 4 GiB. */
static int parse_elf(struct mem_registry *mem, const char *name, const void *buf, size_t len,
		     struct elf_image *img, struct error *err)
{
	int ret;

	if (!elf__class(buf, len))
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: Multiboot kernel is neither ELF nor has load addresses (bit 16)",
		    name);
	ret = elf__parse(mem, name, buf, len, 0, img, err);
	if (ret)
		return ret;
	if (img->image_end > HIGH_MEM_START)
		return err_set(err, -ENOEXEC,
			       "kernel %s: Multiboot kernel extends above 4 GiB (to 0x%llx)", name,
			       (unsigned long long)img->image_end);
	return 0;
}

/*
 * The information structure and everything it points to are built in a host
 * buffer that mirrors [MB_INFO_GPA, MB_INFO_END), then copied in one go.
 */
struct mb_info {
	uint8_t data[MB_INFO_END - MB_INFO_GPA];
	size_t used;
	bool full;
};

/* Claim size bytes; returns their guest address, or 0 once full. */
static uint32_t mbi_alloc(struct mb_info *mb, size_t size, size_t align)
{
	size_t off = ALIGN_UP(mb->used, align);

	if (mb->full || off > sizeof(mb->data) || size > sizeof(mb->data) - off) {
		mb->full = true;
		return 0;
	}
	mb->used = off + size;
	return (uint32_t)(MB_INFO_GPA + off);
}

static uint8_t *mbi_ptr(struct mb_info *mb, uint32_t gpa)
{
	return mb->data + (gpa - MB_INFO_GPA);
}

/* a, then " " and b if b is given, NUL-terminated. */
static uint32_t mbi_string(struct mb_info *mb, const char *a, const char *b)
{
	size_t la = strlen(a), lb = b ? strlen(b) + 1 : 0;
	uint32_t gpa = mbi_alloc(mb, la + lb + 1, 1);
	char *s;

	if (!gpa)
		return 0;
	s = (char *)mbi_ptr(mb, gpa);
	memcpy(s, a, la);
	if (b) {
		s[la] = ' ';
		memcpy(s + la + 1, b, lb - 1);
	}
	s[la + lb] = '\0';
	return gpa;
}

struct mmap_entry {
	uint64_t base, len;
	uint32_t type;
};

static uint32_t mmap_type(const struct mem_region *r)
{
	if (r->flags & MEM_REGION_RAM)
		return MB_MMAP_RAM;
	if (!strcmp(r->name, "acpi.tables"))
		return MB_MMAP_ACPI;
	return MB_MMAP_RESERVED;
}

/* The memory map is the registry's ranges, sorted by address. */
static void mbi_mmap(struct mb_info *mb, struct mem_registry *mem)
{
	struct mmap_entry e[MEM_MAX_REGIONS * MEM_MAX_RANGES];
	unsigned int n = 0, i, j;
	struct mem_region *r;
	struct mem_range *rg;
	uint8_t *info = mb->data;
	uint32_t gpa;

	mem__for_each_region (mem, r) {
		mem__for_each_range (r, rg) {
			struct mmap_entry x = {rg->gpa, rg->size, mmap_type(r)};

			for (j = n++; j > 0 && e[j - 1].base > x.base; j--)
				e[j] = e[j - 1];
			e[j] = x;
		}
	}
	gpa = mbi_alloc(mb, (size_t)n * MB_MMAP_SIZE, 8);
	if (!gpa)
		return;
	for (i = 0; i < n; i++) {
		uint8_t *p = mbi_ptr(mb, gpa) + i * MB_MMAP_SIZE;

		put_le32(p, MB_MMAP_SIZE - 4);
		put_le64(p + 4, e[i].base);
		put_le64(p + 12, e[i].len);
		put_le32(p + 20, e[i].type);
	}
	put_le32(info + MBI_O_MMAP_LEN, n * MB_MMAP_SIZE);
	put_le32(info + MBI_O_MMAP_ADDR, gpa);
}

/*
 * Lay out everything but the module addresses, which are known once the
 * modules are read. *mods gets the guest address of the module list.
 */
static int mbi_build(struct mb_info *mb, struct mem_registry *mem, const struct kernel_args *args,
		     const char *name, uint32_t *mods, struct error *err)
{
	struct mem_region *ram = mem__find_region(mem, "pc.ram");
	uint8_t *info;
	unsigned int i;

	if (!ram)
		return err_set(err, -EINVAL,
			       "kernel %s: no pc.ram region for the Multiboot memory information",
			       name);
	memset(mb, 0, sizeof(*mb));
	info = mbi_ptr(mb, mbi_alloc(mb, MBI_SIZE, 16));
	put_le32(info + MBI_O_FLAGS, MBI_MEM | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_LOADER_NAME);
	put_le32(info + MBI_O_MEM_LOWER, LOW_RAM_END / KiB);
	put_le32(info + MBI_O_MEM_UPPER, (pc__low_ram_end(ram->size) - HIGH_RAM_START) / KiB);
	mbi_mmap(mb, mem);
	put_le32(info + MBI_O_CMDLINE, mbi_string(mb, name, args->append));
	put_le32(info + MBI_O_LDR_NAME, mbi_string(mb, "kvmsnap", NULL));
	*mods = mbi_alloc(mb, (size_t)args->nr_initrds * MB_MOD_SIZE, 16);
	put_le32(info + MBI_O_MODS_CNT, args->nr_initrds);
	put_le32(info + MBI_O_MODS_ADDR, *mods);
	for (i = 0; i < args->nr_initrds && !mb->full; i++) {
		uint32_t s = mbi_string(mb, args->initrds[i], NULL);

		if (s)
			put_le32(mbi_ptr(mb, *mods) + i * MB_MOD_SIZE + 8, s);
	}
	if (mb->full)
		return err_set(
		    err, -E2BIG,
		    "kernel %s: Multiboot info (cmdline, module names) exceeds %llu bytes", name,
		    MB_INFO_END - MB_INFO_GPA);
	return 0;
}

/* Read one module into guest RAM at gpa; *end gets the first byte after it. */
static int load_module(struct mem_registry *mem, const char *path, uint64_t gpa, uint64_t *end,
		       struct error *err)
{
	struct mem_region *r;
	struct stat st;
	ssize_t n;
	void *dst;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = err_errno(err, errno, "initrd %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_set(err, -EINVAL, "initrd %s: not a regular file", path);
		goto out;
	}
	/* Module addresses are 32-bit fields. */
	dst = mem__gpa_to_host(mem, gpa, st.st_size);
	if (!dst || !mem__find_range(mem, gpa, &r) || !(r->flags & MEM_REGION_RAM) ||
	    gpa + st.st_size > HIGH_MEM_START) {
		ret =
		    err_set(err, -ENOMEM, "initrd %s: %lld bytes do not fit in guest RAM at 0x%llx",
			    path, (long long)st.st_size, (unsigned long long)gpa);
		goto out;
	}
	n = read_in_full(fd, dst, st.st_size);
	if (n != st.st_size) {
		ret = n < 0 ? err_errno(err, (int)n, "initrd %s: read", path)
			    : err_set(err, -EIO, "initrd %s: read: file shrank", path);
		goto out;
	}
	*end = gpa + st.st_size;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Modules go page-aligned after the kernel, in --initrd order. */
static int load_modules(struct mem_registry *mem, const struct kernel_args *args,
			struct mb_info *mb, uint32_t mods, uint64_t *image_end, struct error *err)
{
	uint64_t gpa = *image_end, end = 0;
	unsigned int i;
	int ret;

	for (i = 0; i < args->nr_initrds; i++) {
		uint8_t *m = mbi_ptr(mb, mods) + i * MB_MOD_SIZE;

		ret = load_module(mem, args->initrds[i], gpa, &end, err);
		if (ret)
			return ret;
		put_le32(m, (uint32_t)gpa);
		put_le32(m + 4, (uint32_t)end);
		gpa = ALIGN_UP(end, PAGE_SIZE);
	}
	*image_end = gpa;
	return 0;
}

/* Everything is checked and laid out before the first write to the guest. */
int loader__load_multiboot(struct mem_registry *mem, const struct kernel_args *args,
			   const void *buf, size_t len, struct boot_state *boot, struct error *err)
{
	const char *name = args->path ? args->path : "(kernel)";
	struct elf_image img;
	struct mb_info *mb;
	uint64_t image_end;
	uint32_t flags, mods = 0;
	size_t hoff;
	int ret;

	if (loader__find_multiboot(buf, len, &hoff))
		return err_set(err, -ENOENT, "kernel %s: no Multiboot header in its first 8 KiB",
			       name);
	flags = get_le32((const uint8_t *)buf + hoff + 4);
	ret = check_flags(name, flags, err);
	if (ret)
		return ret;
	if (flags & MB_AOUT_KLUDGE)
		ret = parse_aout(mem, name, buf, len, hoff, &img, err);
	else
		ret = parse_elf(mem, name, buf, len, &img, err);
	if (ret)
		return ret;

	mb = malloc(sizeof(*mb));
	if (!mb)
		return err_errno(err, ENOMEM, "kernel %s", name);
	ret = mbi_build(mb, mem, args, name, &mods, err);
	if (ret)
		goto out;
	elf__load(mem, &img, buf);
	image_end = img.image_end;
	ret = load_modules(mem, args, mb, mods, &image_end, err);
	if (ret)
		goto out;
	ret = mem__write(mem, MB_INFO_GPA, mb->data, mb->used);
	if (ret)
		err_set(err, ret, "kernel %s: no RAM for the Multiboot info at 0x%llx", name,
			(unsigned long long)MB_INFO_GPA);
	else
		ret = boot__build_gdt(mem, err);
	if (ret)
		goto out;

	boot->mode = BOOT_MULTIBOOT1;
	boot->entry = img.entry;
	boot->eax = MB_BOOT_MAGIC;
	boot->ebx = MB_INFO_GPA;
	boot->rsp = 0; /* the spec leaves ESP undefined: the kernel sets its own */
	boot->rdi = 0;
	boot->image_end = image_end;
out:
	free(mb);
	return ret;
}
