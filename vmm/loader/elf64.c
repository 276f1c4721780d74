// SPDX-License-Identifier: GPL-2.0
/* ELF64 x86-64 kernels, entered in 64-bit mode on the host-built page tables. */
#include "loader/loader.h"

#include "layout.h"
#include "loader/elf.h"

int loader__load_elf64(struct mem_registry *mem, const char *name, const void *buf, size_t len,
		       struct boot_state *boot, struct error *err)
{
	struct elf_image img;
	int ret;

	ret = elf__parse(mem, name, buf, len, 64, &img, err);
	if (ret)
		return ret;
	elf__load(mem, &img, buf);
	ret = boot__build_gdt(mem, err);
	if (!ret)
		ret = boot__build_pagetables(mem, err);
	if (ret)
		return ret;

	boot->mode = BOOT_LONG64;
	boot->entry = img.entry;
	boot->image_end = img.image_end;
	boot->rsp = BOOT_STACK_TOP;
	boot->rdi = BOOT_INFO_GPA;
	boot->eax = 0;
	boot->ebx = 0;
	return 0;
}
