// SPDX-License-Identifier: GPL-2.0
/*
 * Linux bzImage kernels, entered at their 64-bit entry point as boot.rst's
 * "64-bit boot protocol" says: the protected-mode kernel at its preferred
 * (aligned) address, the zero page in RSI, identity-mapped page tables, a
 * GDT with __BOOT_CS (0x10) and __BOOT_DS (0x18), interrupts off. The
 * real-mode setup code is never run: no firmware is there to serve it.
 * By default the compressed payload is unpacked here rather than by the
 * kernel's decompressor (see loader__load_linux() in loader.h): in a nested
 * guest every page that decompressor touches is a costly nested fault.
 */
#include "loader/linux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "lib/le.h"
#include "loader/elf.h"
#include "loader/kcache.h"
#include "loader/loader.h"
#include "loader/unpack.h"
#include "pc.h"
#include "util/util.h"

#define BOOT_FLAG_MAGIC 0xaa55
#define HDRS_MAGIC	"HdrS"

int bzimage__detect(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	if (len >= BZ_VERSION && !memcmp(b + BZ_HEADER, HDRS_MAGIC, 4))
		return 1;
	return len >= BZ_BOOT_FLAG + 2 && get_le16(b + BZ_BOOT_FLAG) == BOOT_FLAG_MAGIC;
}

int bzimage__parse(const void *buf, size_t len, const char *name, struct bzimage *bz,
		   struct error *err)
{
	const uint8_t *b = buf;
	unsigned int setup_sects;
	uint16_t xlf;

	memset(bz, 0, sizeof(*bz));
	if (len < BZ_VERSION + 2 || memcmp(b + BZ_HEADER, HDRS_MAGIC, 4))
		return err_set(err, -ENOEXEC,
			       "kernel %s: not a Linux bzImage: no \"HdrS\" magic at offset 0x%x",
			       name, BZ_HEADER);
	bz->version = get_le16(b + BZ_VERSION);
	if (bz->version < BZ_MIN_VERSION)
		return err_set(err, -ENOEXEC,
			       "kernel %s: boot protocol %u.%02u is too old; kvmsnap needs 2.12 "
			       "or later (Linux 3.8+)",
			       name, bz->version >> 8, bz->version & 0xff);
	bz->hdr_end = BZ_JUMP + 2 + b[BZ_JUMP + 1];
	if (bz->hdr_end < BZ_INIT_SIZE + 4 || bz->hdr_end > len)
		return err_set(err, -ENOEXEC,
			       "kernel %s: setup header ends at 0x%zx, before its 2.12 fields or "
			       "past the end of the file",
			       name, bz->hdr_end);
	if (!b[BZ_RELOCATABLE])
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: not relocatable; kvmsnap enters only relocatable kernels", name);
	xlf = get_le16(b + BZ_XLOADFLAGS);
	if (!(xlf & XLF_KERNEL_64))
		return err_set(err, -ENOEXEC, "kernel %s: no 64-bit entry point (xloadflags 0x%x)",
			       name, xlf);

	setup_sects = b[BZ_SETUP_SECTS] ? b[BZ_SETUP_SECTS] : 4; /* 0 means 4 */
	bz->setup_bytes = (size_t)(setup_sects + 1) * 512;
	bz->kernel_bytes = (size_t)get_le32(b + BZ_SYSSIZE) * 16;
	if (!bz->kernel_bytes || len < bz->setup_bytes || len - bz->setup_bytes < bz->kernel_bytes)
		return err_set(err, -ENOEXEC,
			       "kernel %s: truncated: the header says %zu bytes of setup and %zu "
			       "of kernel, the file has %zu",
			       name, bz->setup_bytes, bz->kernel_bytes, len);
	bz->initrd_addr_max = get_le32(b + BZ_INITRD_ADDR_MAX);
	bz->kernel_alignment = get_le32(b + BZ_KERNEL_ALIGNMENT);
	bz->cmdline_size = get_le32(b + BZ_CMDLINE_SIZE);
	bz->pref_address = get_le64(b + BZ_PREF_ADDRESS);
	bz->init_size = get_le32(b + BZ_INIT_SIZE);
	bz->payload_offset = get_le32(b + BZ_PAYLOAD_OFFSET);
	bz->payload_length = get_le32(b + BZ_PAYLOAD_LENGTH);
	if (!bz->kernel_alignment || (bz->kernel_alignment & (bz->kernel_alignment - 1)))
		return err_set(err, -ENOEXEC,
			       "kernel %s: kernel_alignment 0x%x is not a power of two", name,
			       bz->kernel_alignment);
	return 0;
}

void linux__build_zero_page(uint8_t *zp, const void *kernel, const struct bzimage *bz,
			    struct mem_registry *mem, const struct linux_layout *l)
{
	struct e820_entry e[E820_MAX_ENTRIES];
	unsigned int n, i;

	memset(zp, 0, ZP_SIZE);
	/* The setup header as the file has it; boot.rst: the loader fills in the rest. */
	memcpy(zp + BZ_SETUP_SECTS, (const uint8_t *)kernel + BZ_SETUP_SECTS,
	       bz->hdr_end - BZ_SETUP_SECTS);
	zp[BZ_TYPE_OF_LOADER] = LOADER_TYPE_UNKNOWN;
	put_le32(zp + BZ_CODE32_START, (uint32_t)l->load_gpa);
	put_le32(zp + BZ_CMD_LINE_PTR, (uint32_t)l->cmdline_gpa);
	put_le32(zp + ZP_EXT_CMD_LINE_PTR, (uint32_t)(l->cmdline_gpa >> 32));
	put_le32(zp + BZ_RAMDISK_IMAGE, (uint32_t)l->initrd_gpa);
	put_le32(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(l->initrd_gpa >> 32));
	put_le32(zp + BZ_RAMDISK_SIZE, (uint32_t)l->initrd_size);
	put_le32(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)(l->initrd_size >> 32));
	/* The kernel would find the RSDP by scanning 0xe0000 too; this saves the scan. */
	put_le64(zp + ZP_ACPI_RSDP_ADDR, l->rsdp_gpa);

	n = e820__build(mem, e, E820_MAX_ENTRIES);
	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	for (i = 0; i < n; i++) {
		uint8_t *p = zp + ZP_E820_TABLE + i * E820_ENTRY_SIZE;

		put_le64(p, e[i].addr);
		put_le64(p + 8, e[i].size);
		put_le32(p + 16, e[i].type);
	}
}

/* Host address of [gpa, gpa + len) if it is all guest RAM, else NULL. */
static uint8_t *ram_at(struct mem_registry *mem, uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem__gpa_to_host(mem, gpa, len);
	struct mem_region *r;

	if (!p || !mem__find_range(mem, gpa, &r) || !(r->flags & MEM_REGION_RAM))
		return NULL;
	return p;
}

/* Total size of the --initrd files, which the kernel takes as one concatenated archive. */
static int initrd_size(const struct kernel_args *args, uint64_t *total, struct error *err)
{
	struct stat st;
	unsigned int i;

	*total = 0;
	for (i = 0; i < args->nr_initrds; i++) {
		if (stat(args->initrds[i], &st) < 0)
			return err_errno(err, errno, "initrd %s", args->initrds[i]);
		if (!S_ISREG(st.st_mode))
			return err_set(err, -EINVAL, "initrd %s: not a regular file",
				       args->initrds[i]);
		*total += (uint64_t)st.st_size;
	}
	return 0;
}

/* Read the --initrd files back to back into [gpa, gpa + total). */
static int initrd_read(struct mem_registry *mem, const struct kernel_args *args, uint64_t gpa,
		       uint64_t total, struct error *err)
{
	uint8_t *dst = ram_at(mem, gpa, total);
	uint64_t done = 0;
	unsigned int i;
	struct stat st;
	int fd, ret = 0;
	ssize_t n;

	if (!dst)
		return err_set(err, -EFAULT, "initrd: no RAM at 0x%llx", (unsigned long long)gpa);
	for (i = 0; i < args->nr_initrds && !ret; i++) {
		fd = open(args->initrds[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			ret = err_errno(err, errno, "initrd %s", args->initrds[i]);
		} else if ((uint64_t)st.st_size > total - done) {
			ret = err_set(err, -EIO, "initrd %s: the file grew while loading",
				      args->initrds[i]);
		} else {
			n = read_in_full(fd, dst + done, st.st_size);
			if (n != st.st_size)
				ret = n < 0 ? err_errno(err, (int)n, "initrd %s: read",
							args->initrds[i])
					    : err_set(err, -EIO, "initrd %s: read: file shrank",
						      args->initrds[i]);
			done += st.st_size;
		}
		if (fd >= 0)
			close(fd);
	}
	return ret;
}

/*
 * Place the initrd page-aligned as high as it may go: below initrd_addr_max,
 * below 4 GiB's RAM end, above the kernel's init_size. 0 or -ENOMEM.
 */
static int place_initrd(struct mem_registry *mem, const struct bzimage *bz, uint64_t kernel_end,
			uint64_t size, uint64_t *gpa, const char *first, struct error *err)
{
	struct mem_region *ram = mem__find_region(mem, "pc.ram");
	uint64_t top = ram ? pc__low_ram_end(ram->size) : 0;
	char a[32];

	top = MIN(top, (uint64_t)bz->initrd_addr_max + 1);
	if (size > top || ALIGN_DOWN(top - size, PAGE_SIZE) < kernel_end)
		return err_set(err, -ENOMEM,
			       "initrd %s: %s does not fit in guest RAM between the kernel's end "
			       "(0x%llx) and 0x%llx; give more --mem",
			       first, format_size(size, a, sizeof(a)),
			       (unsigned long long)kernel_end, (unsigned long long)top);
	*gpa = ALIGN_DOWN(top - size, PAGE_SIZE);
	return 0;
}

/* The payload as the header places it, or NULL when it lies outside the kernel. */
static const uint8_t *payload_of(const uint8_t *buf, const struct bzimage *bz)
{
	if (bz->payload_length < 8 || bz->payload_offset > bz->kernel_bytes ||
	    bz->payload_length > bz->kernel_bytes - bz->payload_offset)
		return NULL;
	return buf + bz->setup_bytes + bz->payload_offset;
}

/* Decode the payload into a new mapping of *cap bytes. */
static int decode(const char *name, enum payload_codec codec, const uint8_t *in, size_t in_len,
		  uint32_t size, void **out, size_t *cap, struct error *err)
{
	size_t len = 0;
	int ret;

	*cap = ALIGN_UP((size_t)size + 1, PAGE_SIZE); /* one more byte tells "too long" apart */
	*out = mmap(NULL, *cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (*out == MAP_FAILED) {
		*out = NULL;
		return err_errno(err, errno, "kernel %s: %u bytes to unpack into", name, size);
	}
	ret = unpack__run(codec, in, in_len, *out, *cap, &len, err);
	if (ret)
		return err_prefix(err, "kernel %s", name);
	if (len != size)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: the %s payload unpacks to %zu bytes, its trailer says %u", name,
		    unpack__name(codec), len, size);
	return 0;
}

/*
 * Unpack the payload in (of a codec unpack__supported()) on the host, or
 * map it from the kernel cache, and load its vmlinux ELF: segments at their
 * physical addresses, entry at startup_64. 0 with *entry and *end, or a
 * negative errno for a payload that the kernel's own decompressor would
 * choke on as well.
 */
static int load_unpacked(struct mem_registry *mem, const struct kernel_args *args, const char *name,
			 const uint8_t *in, size_t in_len, enum payload_codec codec,
			 uint64_t *entry, uint64_t *end, struct kernel_report *rep,
			 struct error *err)
{
	struct kcache_hit hit = {0};
	const uint8_t *data;
	struct elf_image img;
	struct error cerr;
	void *out = NULL;
	size_t cap = 0;
	uint32_t size;
	int ret;

	/* kbuild appends the unpacked size (gzip's own ISIZE is the same field). */
	size = get_le32(in + in_len - 4);
	if (size < 64 || size > KERNEL_UNPACKED_MAX)
		return err_set(err, -ENOEXEC,
			       "kernel %s: its %s payload says it unpacks to %u bytes; kvmsnap "
			       "takes 64 to %llu",
			       name, rep->codec, size, KERNEL_UNPACKED_MAX);

	ret = args->cache_dir ? kcache__lookup(args->cache_dir, in, in_len, size, &hit, &cerr)
			      : -ENOENT;
	if (!ret) {
		rep->cached = true;
		data = hit.data;
	} else {
		if (ret != -ENOENT)
			snprintf(rep->cache_note, sizeof(rep->cache_note), "%s", cerr.msg);
		ret = decode(name, codec, in, in_len, size, &out, &cap, err);
		data = out;
	}
	if (!ret)
		ret = elf__parse(mem, name, data, size, 64, &img, err);
	if (!ret) {
		elf__load(mem, &img, data);
		*entry = img.entry;
		*end = img.image_end;
		rep->unpacked = true;
		rep->unpacked_bytes = size;
		/* Only a payload that loaded is worth keeping. */
		if (out && args->cache_dir) {
			if (kcache__store(args->cache_dir, in, in_len, data, size, &cerr))
				snprintf(rep->cache_note, sizeof(rep->cache_note), "%s", cerr.msg);
			else
				rep->stored = true;
		}
	}
	if (out)
		munmap(out, cap);
	kcache__release(&hit);
	return ret;
}

int loader__load_linux(struct mem_registry *mem, const struct kernel_args *args, const void *buf,
		       size_t len, struct boot_state *boot, struct error *err)
{
	const char *name = args->path ? args->path : "(kernel)";
	const char *cmdline = args->append ? args->append : LINUX_DEFAULT_CMDLINE;
	struct linux_layout l = {.cmdline_gpa = BOOT_CMDLINE_GPA, .rsdp_gpa = ACPI_GPA};
	struct kernel_report scratch, *rep = args->report ? args->report : &scratch;
	uint64_t kernel_end, span, entry, image_end = 0;
	enum payload_codec codec = CODEC_UNKNOWN;
	const uint8_t *in;
	struct bzimage bz;
	uint8_t *dst, *zp;
	size_t clen;
	int ret;

	memset(rep, 0, sizeof(*rep));
	rep->codec = unpack__name(codec);
	ret = bzimage__parse(buf, len, name, &bz, err);
	if (ret)
		return ret;
	clen = strlen(cmdline);
	if (clen > bz.cmdline_size || clen >= BOOT_PGTABLE_GPA - BOOT_CMDLINE_GPA)
		return err_set(err, -E2BIG,
			       "kernel %s: the command line is %zu bytes; the kernel takes at "
			       "most %u",
			       name, clen, bz.cmdline_size);

	/* A relocatable kernel goes at its preferred address, aligned as it asks. */
	l.load_gpa = ALIGN_UP(MAX(bz.pref_address, KERNEL_MIN_GPA), bz.kernel_alignment);
	span = MAX((uint64_t)bz.init_size, bz.kernel_bytes);
	dst = ram_at(mem, l.load_gpa, span);
	if (!dst)
		return err_set(err, -ENOMEM,
			       "kernel %s: needs RAM [0x%llx, 0x%llx) to decompress; give more "
			       "--mem",
			       name, (unsigned long long)l.load_gpa,
			       (unsigned long long)(l.load_gpa + span));
	in = payload_of(buf, &bz);
	if (in)
		codec = unpack__detect(in, bz.payload_length);
	rep->codec = unpack__name(codec);
	entry = l.load_gpa + LINUX_ENTRY64_OFF; /* the compressed kernel's 64-bit entry */
	if (args->unpack == UNPACK_HOST && in && unpack__supported(codec)) {
		ret = load_unpacked(mem, args, name, in, bz.payload_length, codec, &entry,
				    &image_end, rep, err);
		if (ret)
			return ret;
	} else { /* the compressed kernel, whose decompressor runs first */
		memcpy(dst, (const uint8_t *)buf + bz.setup_bytes, bz.kernel_bytes);
	}
	kernel_end = MAX(l.load_gpa + span, image_end);

	if (args->nr_initrds) {
		ret = initrd_size(args, &l.initrd_size, err);
		if (!ret)
			ret = place_initrd(mem, &bz, kernel_end, l.initrd_size, &l.initrd_gpa,
					   args->initrds[0], err);
		if (!ret)
			ret = initrd_read(mem, args, l.initrd_gpa, l.initrd_size, err);
		if (ret)
			return ret;
	}

	ret = mem__write(mem, l.cmdline_gpa, cmdline, clen + 1);
	zp = mem__gpa_to_host(mem, LINUX_ZERO_PAGE_GPA, ZP_SIZE);
	if (ret || !zp)
		return err_set(err, -EFAULT, "kernel %s: no RAM for the zero page", name);
	linux__build_zero_page(zp, buf, &bz, mem, &l);

	ret = boot__build_linux_gdt(mem, err);
	if (!ret)
		ret = boot__build_pagetables(mem, err);
	if (ret)
		return ret;
	boot->mode = BOOT_LINUX64;
	boot->entry = entry;
	boot->rsi = LINUX_ZERO_PAGE_GPA;
	boot->rsp = 0;
	boot->rdi = 0;
	boot->image_end = MAX(kernel_end, l.initrd_gpa + l.initrd_size);
	return 0;
}
