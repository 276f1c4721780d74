// SPDX-License-Identifier: GPL-2.0
/*
 * ELF executables: every field is checked against the file and guest RAM
 * before a byte is written, so a bad file leaves guest memory untouched.
 */
#include "loader/elf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"
#include "util/util.h"

#define ELFCLASS32  1
#define ELFCLASS64  2
#define ELFDATA2LSB 1
#define EV_CURRENT  1
#define ET_EXEC	    2
#define EM_386	    3
#define EM_X86_64   62
#define PT_LOAD	    1

/* Where the fields of the ELF header and a program header are, per class. */
struct elf_layout {
	unsigned int bits;
	uint16_t machine;
	const char *machine_name;
	size_t ehsize, phentsize;
	size_t e_entry, e_phoff, e_phentsize, e_phnum;
	size_t p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz;
};

/* clang-format off */
static const struct elf_layout elf32_layout = {
	.bits = 32, .machine = EM_386, .machine_name = "i386 (EM_386)",
	.ehsize = 52, .phentsize = 32,
	.e_entry = 24, .e_phoff = 28, .e_phentsize = 42, .e_phnum = 44,
	.p_type = 0, .p_offset = 4, .p_vaddr = 8, .p_paddr = 12,
	.p_filesz = 16, .p_memsz = 20, .p_flags = 24,
};

static const struct elf_layout elf64_layout = {
	.bits = 64, .machine = EM_X86_64, .machine_name = "x86-64 (EM_X86_64)",
	.ehsize = 64, .phentsize = 56,
	.e_entry = 24, .e_phoff = 32, .e_phentsize = 54, .e_phnum = 56,
	.p_type = 0, .p_flags = 4, .p_offset = 8, .p_vaddr = 16,
	.p_paddr = 24, .p_filesz = 32, .p_memsz = 40,
};
/* clang-format on */

/* An address-sized field: 4 bytes in ELF32, 8 in ELF64. */
static uint64_t get_addr(const struct elf_layout *l, const uint8_t *p)
{
	return l->bits == 64 ? get_le64(p) : get_le32(p);
}

unsigned int elf__class(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (len < 5 || memcmp(p, "\177ELF", 4))
		return 0;
	return p[4];
}

int loader__check_span(struct mem_registry *mem, const char *name, const char *what, uint64_t gpa,
		       uint64_t size, struct error *err)
{
	unsigned long long a = gpa, s = size;
	struct mem_region *r;
	struct mem_range *rg;

	if (size > UINT64_MAX - gpa)
		return err_set(err, -ENOEXEC,
			       "kernel %s: %s: segment at 0x%llx of 0x%llx bytes wraps around",
			       name, what, a, s);
	if (gpa < KERNEL_MIN_GPA)
		return err_set(err, -ENOEXEC,
			       "kernel %s: %s: segment at 0x%llx is below 0x%llx (boot structures)",
			       name, what, a, KERNEL_MIN_GPA);
	rg = mem__find_range(mem, gpa, &r);
	if (!rg || !(r->flags & MEM_REGION_RAM) || (r->flags & MEM_REGION_READONLY))
		return err_set(err, -ENOEXEC,
			       "kernel %s: %s: segment at 0x%llx-0x%llx is not in guest RAM", name,
			       what, a, a + s);
	if (!mem__gpa_to_host(mem, gpa, size))
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: %s: segment at 0x%llx-0x%llx extends past the end of guest RAM",
		    name, what, a, a + s);
	return 0;
}

/* Check the ELF identification and header fields that do not involve offsets. */
static int check_header(const char *name, const uint8_t *p, size_t len, unsigned int bits,
			const struct elf_layout **layout, struct error *err)
{
	const struct elf_layout *l;
	unsigned int cls = elf__class(p, len);

	if (!cls)
		return err_set(err, -ENOEXEC, "kernel %s: not an ELF file", name);
	if (len < 16)
		return err_set(err, -ENOEXEC, "kernel %s: truncated ELF header (%zu bytes)", name,
			       len);
	if (cls != ELFCLASS32 && cls != ELFCLASS64)
		return err_set(err, -ENOEXEC, "kernel %s: unknown ELF class %u", name, cls);
	l = cls == ELFCLASS64 ? &elf64_layout : &elf32_layout;
	if (bits && bits != l->bits)
		return err_set(err, -ENOEXEC, "kernel %s: %u-bit ELF file, expected a %u-bit one",
			       name, l->bits, bits);
	if (p[5] != ELFDATA2LSB)
		return err_set(err, -ENOEXEC, "kernel %s: ELF file is not little-endian", name);
	if (p[6] != EV_CURRENT)
		return err_set(err, -ENOEXEC, "kernel %s: unknown ELF version %u", name, p[6]);
	if (len < l->ehsize)
		return err_set(err, -ENOEXEC, "kernel %s: truncated ELF header (%zu of %zu bytes)",
			       name, len, l->ehsize);
	if (get_le16(p + 16) != ET_EXEC)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: ELF type %u is not ET_EXEC: kvmsnap loads static executables", name,
		    get_le16(p + 16));
	if (get_le16(p + 18) != l->machine)
		return err_set(err, -ENOEXEC, "kernel %s: ELF machine %u is not %s", name,
			       get_le16(p + 18), l->machine_name);
	if (get_le32(p + 20) != EV_CURRENT)
		return err_set(err, -ENOEXEC, "kernel %s: unknown ELF version %u", name,
			       get_le32(p + 20));
	if (get_le16(p + l->e_phentsize) != l->phentsize)
		return err_set(err, -ENOEXEC, "kernel %s: ELF program header size %u, expected %zu",
			       name, get_le16(p + l->e_phentsize), l->phentsize);
	*layout = l;
	return 0;
}

/* Read program header i and check it against the file and guest RAM. */
static int check_segment(struct mem_registry *mem, const char *name, const struct elf_layout *l,
			 const uint8_t *ph, unsigned int i, size_t len, struct elf_segment *seg,
			 struct error *err)
{
	char what[32];

	seg->index = i;
	seg->flags = get_le32(ph + l->p_flags);
	seg->offset = get_addr(l, ph + l->p_offset);
	seg->vaddr = get_addr(l, ph + l->p_vaddr);
	seg->paddr = get_addr(l, ph + l->p_paddr);
	seg->filesz = get_addr(l, ph + l->p_filesz);
	seg->memsz = get_addr(l, ph + l->p_memsz);

	if (seg->offset > len || seg->filesz > len - seg->offset)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: program header %u: data at 0x%llx+0x%llx is past end of file", name,
		    i, (unsigned long long)seg->offset, (unsigned long long)seg->filesz);
	if (seg->filesz > seg->memsz)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: program header %u: file size 0x%llx exceeds memory size 0x%llx",
		    name, i, (unsigned long long)seg->filesz, (unsigned long long)seg->memsz);
	if (!seg->memsz)
		return 0; /* nothing to place: the caller skips it */
	snprintf(what, sizeof(what), "program header %u", i);
	return loader__check_span(mem, name, what, seg->paddr, seg->memsz, err);
}

/* Two segments loaded over each other mean a broken link, not a kernel. */
static int check_overlap(const char *name, const struct elf_image *img,
			 const struct elf_segment *seg, struct error *err)
{
	const struct elf_segment *o;

	for (o = img->loads; o < img->loads + img->nr_loads; o++) {
		if (seg->paddr < o->paddr + o->memsz && o->paddr < seg->paddr + seg->memsz)
			return err_set(
			    err, -ENOEXEC,
			    "kernel %s: program headers %u and %u overlap in memory at 0x%llx",
			    name, o->index, seg->index,
			    (unsigned long long)MAX(o->paddr, seg->paddr));
	}
	return 0;
}

/*
 * e_entry is a virtual address; like GRUB, translate it through the
 * executable segment that contains it. Identity-linked kernels are unchanged.
 * Linux's vmlinux gives a physical one (phys_startup_64), taken as it is when
 * no segment's virtual range holds it.
 */
static int find_entry(const char *name, struct elf_image *img, uint64_t entry, struct error *err)
{
	const struct elf_segment *s;

	for (s = img->loads; s < img->loads + img->nr_loads; s++) {
		if ((s->flags & ELF_PF_X) && entry >= s->vaddr && entry - s->vaddr < s->memsz) {
			img->entry = s->paddr + (entry - s->vaddr);
			return 0;
		}
	}
	for (s = img->loads; s < img->loads + img->nr_loads; s++) {
		if ((s->flags & ELF_PF_X) && entry >= s->paddr && entry - s->paddr < s->memsz) {
			img->entry = entry;
			return 0;
		}
	}
	return err_set(err, -ENOEXEC,
		       "kernel %s: entry point 0x%llx is not inside an executable segment", name,
		       (unsigned long long)entry);
}

int elf__parse(struct mem_registry *mem, const char *name, const void *buf, size_t len,
	       unsigned int bits, struct elf_image *img, struct error *err)
{
	const struct elf_layout *l = NULL; /* set unless check_header() fails */
	const uint8_t *p = buf;
	uint64_t phoff;
	unsigned int phnum, i;
	int ret;

	memset(img, 0, sizeof(*img));
	ret = check_header(name, p, len, bits, &l, err);
	if (ret)
		return ret;
	img->bits = l->bits;
	phoff = get_addr(l, p + l->e_phoff);
	phnum = get_le16(p + l->e_phnum);
	if (phoff > len || (uint64_t)phnum * l->phentsize > len - phoff)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: %u program headers at 0x%llx extend past the end of the file", name,
		    phnum, (unsigned long long)phoff);
	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = p + phoff + (size_t)i * l->phentsize;
		struct elf_segment seg;

		if (get_le32(ph + l->p_type) != PT_LOAD)
			continue;
		ret = check_segment(mem, name, l, ph, i, len, &seg, err);
		if (ret)
			return ret;
		if (!seg.memsz)
			continue;
		ret = check_overlap(name, img, &seg, err);
		if (ret)
			return ret;
		if (img->nr_loads == ELF_MAX_LOADS)
			return err_set(err, -ENOEXEC, "kernel %s: more than %d loadable segments",
				       name, ELF_MAX_LOADS);
		img->loads[img->nr_loads++] = seg;
		img->image_end = MAX(img->image_end, ALIGN_UP(seg.paddr + seg.memsz, PAGE_SIZE));
	}
	if (!img->nr_loads)
		return err_set(err, -ENOEXEC, "kernel %s: no loadable (PT_LOAD) segments", name);
	return find_entry(name, img, get_addr(l, p + l->e_entry), err);
}

void elf__load(struct mem_registry *mem, const struct elf_image *img, const void *buf)
{
	const struct elf_segment *s;

	for (s = img->loads; s < img->loads + img->nr_loads; s++) {
		uint8_t *dst = mem__gpa_to_host(mem, s->paddr, s->memsz);

		memcpy(dst, (const uint8_t *)buf + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
}
