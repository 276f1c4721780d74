// SPDX-License-Identifier: GPL-2.0
/*
 * The ELF64 loader, the boot GDT and page tables, and loader__load_kernel's
 * file handling, on a PC registry without KVM. ELF images are built here
 * field by field; each malformed one must be refused with one error line
 * and leave guest memory untouched. A fuzz loop feeds mutated images.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "../harness.h"
#include "../lib/elf-build.h"

#include "vmm/layout.h"
#include "vmm/loader/loader.h"
#include "vmm/mem.h"
#include "vmm/pc.h"
#include "vmm/util/util.h"

#define RAM_SIZE   (64 * MiB)
#define IMG_SIZE   0x3000
#define NAME	   "test.elf"
#define ERR_PREFIX "kernel " NAME ": "

#define PT_NOTE	     4
#define PT_GNU_STACK 0x6474e551

#define TEXT_GPA  0x100000ULL
#define TEXT_SIZE 0x200
#define DATA_GPA  0x200000ULL
#define DATA_FILE 0x100
#define DATA_MEM  0x3000
#define ENTRY	  (TEXT_GPA + 0x40)

#define EHDR_SIZE  EHDR64_SIZE
#define PHDR_SIZE  PHDR64_SIZE
#define PH(img, i) ((img) + EHDR_SIZE + (i)*PHDR_SIZE)

static void put_phdr(uint8_t *img, unsigned int i, const struct phdr64 *ph)
{
	elf64_put_phdr(img, i, ph);
	w64(PH(img, i) + 48, 0x1000); /* p_align */
}

/* Text at 1 MiB, data with bss at 2 MiB, and a PT_GNU_STACK to skip. */
static void build_elf64(uint8_t *img)
{
	const struct phdr64 text = {PT_LOAD,  PF_R | PF_X, 0x1000,   TEXT_GPA,
				    TEXT_GPA, TEXT_SIZE,   TEXT_SIZE};
	const struct phdr64 data = {PT_LOAD,  PF_R | PF_W, 0x2000,  DATA_GPA,
				    DATA_GPA, DATA_FILE,   DATA_MEM};
	const struct phdr64 stack = {PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 0};
	unsigned int i;

	memset(img, 0, IMG_SIZE);
	elf64_put_ehdr(img, ENTRY, 3);
	w16(img + 52, EHDR_SIZE); /* e_ehsize */
	w16(img + 58, 64);	  /* e_shentsize */
	put_phdr(img, 0, &text);
	put_phdr(img, 1, &data);
	put_phdr(img, 2, &stack);
	for (i = 0; i < TEXT_SIZE; i++)
		img[0x1000 + i] = (uint8_t)(i * 7 + 1);
	for (i = 0; i < DATA_FILE; i++)
		img[0x2000 + i] = (uint8_t)(0xc3 ^ i);
}

static void *guest(struct mem_registry *reg, uint64_t gpa, uint64_t len)
{
	return mem__gpa_to_host(reg, gpa, len);
}

FIXTURE(elf)
{
	struct mem_registry reg;
	uint8_t img[IMG_SIZE];
	size_t len;
	struct boot_state boot;
	char err[ERROR_MSG_MAX]; /* err.msg of the last failed load, or "" */
	char out[4096];		 /* what the load printed: always nothing */
};

FIXTURE_SETUP(elf)
{
	struct pc_config cfg = {.ram_size = RAM_SIZE, .vram_size = 16 * MiB, .nr_cpus = 1};

	mem__init(&self->reg);
	ASSERT_EQ(pc__setup_memory(&self->reg, &cfg, NULL), 0);
	build_elf64(self->img);
	self->len = IMG_SIZE;
}

FIXTURE_TEARDOWN(elf)
{
	mem__exit(&self->reg);
}

static int load_elf64(struct _fixture_elf *self)
{
	struct capture c;
	struct error err;
	int ret;

	capture_begin(&c);
	ret = loader__load_elf64(&self->reg, NAME, self->img, self->len, &self->boot, &err);
	capture_end(&c, self->out, sizeof(self->out));
	snprintf(self->err, sizeof(self->err), "%s", ret ? err.msg : "");
	return ret;
}

/*
 * The image must be refused with -ENOEXEC and an error message that names
 * the file and contains `why`, before anything reaches guest memory. The
 * loader itself prints nothing.
 */
static void expect_reject(struct _fixture_elf *self, struct th_result *_r, const char *why)
{
	ASSERT_EQ(load_elf64(self), -ENOEXEC);
	if (!strstr(self->err, why))
		TH_LOG("err: %s", self->err);
	ASSERT_STREQ(self->out, "");
	ASSERT_EQ(strncmp(self->err, ERR_PREFIX, strlen(ERR_PREFIX)), 0);
	ASSERT_NOT_NULL(strstr(self->err, why));
	ASSERT_TRUE(all_zero(guest(&self->reg, TEXT_GPA, TEXT_SIZE), TEXT_SIZE));
	ASSERT_TRUE(all_zero(guest(&self->reg, BOOT_GDT_GPA, BOOT_GDT_SIZE), BOOT_GDT_SIZE));
	ASSERT_TRUE(all_zero(guest(&self->reg, BOOT_PGTABLE_GPA, PAGE_SIZE), PAGE_SIZE));
}

TEST_F(elf, good_image_loads)
{
	uint8_t *data = guest(&self->reg, DATA_GPA, DATA_MEM);

	memset(data, 0xaa, DATA_MEM); /* the bss must be zeroed, not assumed zero */
	self->boot.all_cpus = true;
	ASSERT_EQ(load_elf64(self), 0);
	EXPECT_STREQ(self->err, "");
	EXPECT_EQ(memcmp(guest(&self->reg, TEXT_GPA, TEXT_SIZE), self->img + 0x1000, TEXT_SIZE), 0);
	EXPECT_EQ(memcmp(data, self->img + 0x2000, DATA_FILE), 0);
	EXPECT_TRUE(all_zero(data + DATA_FILE, DATA_MEM - DATA_FILE));
	EXPECT_EQ(self->boot.mode, BOOT_LONG64);
	EXPECT_EQ(self->boot.entry, ENTRY);
	EXPECT_EQ(self->boot.image_end, DATA_GPA + DATA_MEM);
	EXPECT_EQ(self->boot.rsp, BOOT_STACK_TOP);
	EXPECT_EQ(self->boot.rdi, BOOT_INFO_GPA);
	EXPECT_TRUE(self->boot.all_cpus); /* the caller's */
}

TEST_F(elf, image_end_is_page_aligned)
{
	w64(PH(self->img, 1) + 40, DATA_MEM + 1);
	ASSERT_EQ(load_elf64(self), 0);
	EXPECT_EQ(self->boot.image_end, DATA_GPA + DATA_MEM + PAGE_SIZE);
}

/* Higher-half style: entry is virtual; it is translated like GRUB does. */
TEST_F(elf, entry_translated_through_its_segment)
{
	w64(PH(self->img, 0) + 16, 0xffffffff80000000ULL);
	w64(self->img + 24, 0xffffffff80000040ULL);
	ASSERT_EQ(load_elf64(self), 0);
	EXPECT_EQ(self->boot.entry, ENTRY);
}

TEST_F(elf, segment_with_no_memory_is_skipped)
{
	/* An empty PT_LOAD at address 0 must not trip the low-memory check. */
	w32(PH(self->img, 2), PT_LOAD);
	ASSERT_EQ(load_elf64(self), 0);
}

TEST_F(elf, gdt)
{
	const uint8_t *gdt;

	ASSERT_EQ(load_elf64(self), 0);
	gdt = guest(&self->reg, BOOT_GDT_GPA, BOOT_GDT_SIZE);
	EXPECT_EQ(r64(gdt), 0);
	EXPECT_EQ(r64(gdt + BOOT_CS64), 0x00af9b000000ffffULL);
	EXPECT_EQ(r64(gdt + BOOT_DS), 0x00cf93000000ffffULL);
	EXPECT_EQ(r64(gdt + BOOT_CS32), 0x00cf9b000000ffffULL);
}

/* Walk the boot page tables for gpa; the 2 MiB PDE, or 0 if unmapped. */
static uint64_t walk(struct mem_registry *reg, uint64_t va)
{
	const uint8_t *pml4 = guest(reg, BOOT_PGTABLE_GPA, PAGE_SIZE);
	uint64_t e;
	const uint8_t *t;

	e = r64(pml4 + 8 * ((va >> 39) & 511));
	if (!(e & 1) || (e & 0xfff) != 7)
		return 0;
	t = guest(reg, e & ~0xfffULL, PAGE_SIZE);
	if (!t)
		return 0;
	e = r64(t + 8 * ((va >> 30) & 511));
	if (!(e & 1) || (e & 0xfff) != 7)
		return 0;
	t = guest(reg, e & ~0xfffULL, PAGE_SIZE);
	if (!t)
		return 0;
	return r64(t + 8 * ((va >> 21) & 511));
}

static bool tables_inside_area(struct mem_registry *reg)
{
	const uint8_t *pml4 = guest(reg, BOOT_PGTABLE_GPA, PAGE_SIZE);
	uint64_t pdpt = r64(pml4) & ~0xfffULL;
	unsigned int i;

	if (pdpt < BOOT_PGTABLE_GPA || pdpt >= BOOT_PGTABLE_END)
		return false;
	for (i = 0; i < 512; i++) {
		uint64_t e = r64((const uint8_t *)guest(reg, pdpt, PAGE_SIZE) + 8 * i) & ~0xfffULL;

		if (e && (e < BOOT_PGTABLE_GPA || e >= BOOT_PGTABLE_END))
			return false;
	}
	return true;
}

TEST_F(elf, pagetables_identity_map_low_4g)
{
	const uint8_t *pml4;
	uint64_t a;
	unsigned int i;

	ASSERT_EQ(load_elf64(self), 0);
	ASSERT_TRUE(tables_inside_area(&self->reg));
	for (a = 0; a < 4 * GiB; a += 2 * MiB) {
		uint64_t pde = walk(&self->reg, a);

		/* P, RW, U/S, PS; no PCD/PWT; identity. */
		if (pde != (a | 0x87))
			TH_LOG("va 0x%llx: pde 0x%llx", (unsigned long long)a,
			       (unsigned long long)pde);
		ASSERT_EQ(pde, a | 0x87);
	}
	EXPECT_EQ(walk(&self->reg, 4 * GiB), 0); /* 64 MiB of RAM: nothing above */
	pml4 = guest(&self->reg, BOOT_PGTABLE_GPA, PAGE_SIZE);
	for (i = 1; i < 512; i++)
		EXPECT_EQ(r64(pml4 + 8 * i), 0);
}

TEST(pagetables_map_ram_above_4g)
{
	/* 8 GiB + 6 MiB: RAM above 4 GiB is [4G, 9G + 6M). */
	struct pc_config cfg = {.ram_size = 8 * GiB + 6 * MiB, .vram_size = 16 * MiB, .nr_cpus = 1};
	struct mem_registry reg;
	uint64_t a;

	mem__init(&reg);
	ASSERT_EQ(pc__setup_memory(&reg, &cfg, NULL), 0);
	ASSERT_EQ(boot__build_pagetables(&reg, NULL), 0);
	ASSERT_TRUE(tables_inside_area(&reg));
	for (a = 0; a < 9 * GiB + 6 * MiB; a += 2 * MiB)
		ASSERT_EQ(walk(&reg, a), a | 0x87);
	EXPECT_EQ(walk(&reg, 9 * GiB + 6 * MiB), 0);
	EXPECT_EQ(walk(&reg, 10 * GiB), 0);
	mem__exit(&reg);
}

TEST(pagetables_largest_ram_fits)
{
	struct pc_config cfg = {.ram_size = MEM_MAX, .vram_size = 16 * MiB, .nr_cpus = 1};
	uint64_t top = MEM_MAX - LOW_RAM_LIMIT + HIGH_MEM_START;
	struct mem_registry reg;

	mem__init(&reg);
	ASSERT_EQ(pc__setup_memory(&reg, &cfg, NULL), 0);
	ASSERT_EQ(boot__build_pagetables(&reg, NULL), 0);
	EXPECT_EQ(walk(&reg, top - 2 * MiB), (top - 2 * MiB) | 0x87);
	EXPECT_EQ(walk(&reg, top), 0);
	mem__exit(&reg);
}

TEST(pagetables_enospc)
{
	struct mem_registry reg;
	struct mem_region *low, *big;
	struct capture c;
	struct error err;
	char out[1024];
	int ret;

	/* 200 GiB above 4 GiB needs more PDs than fit below BOOT_PGTABLE_END. */
	mem__init(&reg);
	ASSERT_EQ(mem__add_region(&reg, "low", LOW_RAM_END, MEM_REGION_RAM, &low, NULL), 0);
	ASSERT_EQ(mem__add_range(&reg, low, 0, LOW_RAM_END, 0, NULL), 0);
	ASSERT_EQ(mem__add_region(&reg, "big", 200 * GiB, MEM_REGION_RAM, &big, NULL), 0);
	ASSERT_EQ(mem__add_range(&reg, big, HIGH_MEM_START, 200 * GiB, 0, NULL), 0);
	capture_begin(&c);
	ret = boot__build_pagetables(&reg, &err);
	capture_end(&c, out, sizeof(out));
	EXPECT_EQ(ret, -ENOSPC);
	EXPECT_STREQ(out, "");
	EXPECT_EQ(strncmp(err.msg, "boot page tables: ", 18), 0);
	EXPECT_NOT_NULL(strstr(err.msg, " pages do not fit below 0x"));
	EXPECT_TRUE(all_zero(mem__gpa_to_host(&reg, BOOT_PGTABLE_GPA, PAGE_SIZE), PAGE_SIZE));
	mem__exit(&reg);
}

/* Malformed images. */

TEST_F(elf, rejects_bad_magic)
{
	self->img[1] = 'X';
	expect_reject(self, _r, "not an ELF file");
}

TEST_F(elf, rejects_tiny_file)
{
	self->len = 3;
	expect_reject(self, _r, "not an ELF file");
}

TEST_F(elf, rejects_elf32)
{
	self->img[4] = 1;
	expect_reject(self, _r, "32-bit ELF file, expected a 64-bit one");
}

TEST_F(elf, rejects_unknown_class)
{
	self->img[4] = 3;
	expect_reject(self, _r, "unknown ELF class 3");
}

TEST_F(elf, rejects_big_endian)
{
	self->img[5] = 2;
	expect_reject(self, _r, "not little-endian");
}

TEST_F(elf, rejects_wrong_machine)
{
	w16(self->img + 18, 3);
	expect_reject(self, _r, "ELF machine 3 is not x86-64");
}

TEST_F(elf, rejects_shared_object)
{
	w16(self->img + 16, 3);
	expect_reject(self, _r, "not ET_EXEC");
}

TEST_F(elf, rejects_truncated_header)
{
	self->len = 40;
	expect_reject(self, _r, "truncated ELF header");
	EXPECT_STREQ(self->err, ERR_PREFIX "truncated ELF header (40 of 64 bytes)");
}

TEST_F(elf, rejects_bad_phentsize)
{
	w16(self->img + 54, 32);
	expect_reject(self, _r, "program header size 32");
}

TEST_F(elf, rejects_phdrs_past_eof)
{
	w64(self->img + 32, IMG_SIZE - PHDR_SIZE);
	expect_reject(self, _r, "extend past the end of the file");
}

TEST_F(elf, rejects_phoff_overflow)
{
	w64(self->img + 32, ~0ULL - 8);
	expect_reject(self, _r, "extend past the end of the file");
}

TEST_F(elf, rejects_too_many_phdrs)
{
	w16(self->img + 56, 0xffff);
	expect_reject(self, _r, "extend past the end of the file");
}

TEST_F(elf, rejects_segment_past_eof)
{
	w64(PH(self->img, 1) + 8, IMG_SIZE - 0x80); /* p_offset */
	expect_reject(self, _r, "program header 1: data at 0x2f80+0x100 is past end of file");
}

TEST_F(elf, rejects_segment_offset_overflow)
{
	w64(PH(self->img, 1) + 8, ~0ULL - 0x10);
	expect_reject(self, _r, "past end of file");
}

TEST_F(elf, rejects_filesz_above_memsz)
{
	w64(PH(self->img, 1) + 40, DATA_FILE - 1);
	expect_reject(self, _r, "program header 1: file size 0x100 exceeds memory size 0xff");
}

TEST_F(elf, rejects_segment_below_1m)
{
	w64(PH(self->img, 1) + 24, 0xff000);
	expect_reject(self, _r, "program header 1: segment at 0xff000 is below 0x100000");
}

TEST_F(elf, rejects_segment_in_boot_area)
{
	w64(PH(self->img, 1) + 24, BOOT_PGTABLE_GPA);
	expect_reject(self, _r, "is below 0x100000");
}

TEST_F(elf, rejects_segment_past_ram)
{
	w64(PH(self->img, 1) + 24, RAM_SIZE - PAGE_SIZE);
	expect_reject(self, _r,
		      "program header 1: segment at 0x3fff000-0x4002000 extends past the end of "
		      "guest RAM");
}

TEST_F(elf, rejects_segment_outside_ram)
{
	w64(PH(self->img, 1) + 24, 1 * GiB);
	expect_reject(self, _r, "segment at 0x40000000-0x40003000 is not in guest RAM");
}

TEST_F(elf, rejects_segment_in_vram)
{
	w64(PH(self->img, 1) + 24, VGA_LFB_GPA);
	expect_reject(self, _r, "is not in guest RAM");
}

TEST_F(elf, rejects_segment_in_bios)
{
	w64(PH(self->img, 1) + 24, BIOS_GPA);
	expect_reject(self, _r, "is not in guest RAM");
}

TEST_F(elf, rejects_address_overflow)
{
	w64(PH(self->img, 1) + 24, ~0ULL - 0xfff);
	expect_reject(self, _r, "wraps around");
}

TEST_F(elf, rejects_huge_memsz)
{
	w64(PH(self->img, 1) + 40, ~0ULL);
	expect_reject(self, _r, "wraps around");
}

TEST_F(elf, rejects_overlapping_segments)
{
	w64(PH(self->img, 1) + 24, TEXT_GPA + 0x100);
	expect_reject(self, _r, "program headers 0 and 1 overlap");
	EXPECT_STREQ(self->err, ERR_PREFIX "program headers 0 and 1 overlap in memory at 0x100100");
}

TEST_F(elf, rejects_entry_outside_segments)
{
	w64(self->img + 24, 0x5000000);
	expect_reject(self, _r, "entry point 0x5000000 is not inside an executable segment");
}

TEST_F(elf, rejects_entry_in_data_segment)
{
	w64(self->img + 24, DATA_GPA + 0x10);
	expect_reject(self, _r, "entry point 0x200010 is not inside an executable segment");
}

TEST_F(elf, rejects_entry_just_past_text)
{
	w64(self->img + 24, TEXT_GPA + TEXT_SIZE);
	expect_reject(self, _r, "is not inside an executable segment");
}

TEST_F(elf, rejects_no_load_segments)
{
	w32(PH(self->img, 0), PT_NOTE);
	w32(PH(self->img, 1), PT_NOTE);
	expect_reject(self, _r, "no loadable (PT_LOAD) segments");
}

TEST_F(elf, rejects_no_program_headers)
{
	w16(self->img + 56, 0);
	expect_reject(self, _r, "no loadable (PT_LOAD) segments");
}

/* loader__load_kernel: reading the file and choosing the format. */

FIXTURE(kfile)
{
	struct mem_registry reg;
	struct boot_state boot;
	char dir[64];
	char path[128];
	char err[ERROR_MSG_MAX]; /* err.msg of the last failed load, or "" */
	char out[4096];		 /* what the load printed: always nothing */
};

FIXTURE_SETUP(kfile)
{
	struct pc_config cfg = {.ram_size = RAM_SIZE, .vram_size = 16 * MiB, .nr_cpus = 1};

	mem__init(&self->reg);
	ASSERT_EQ(pc__setup_memory(&self->reg, &cfg, NULL), 0);
	strcpy(self->dir, "/tmp/kvmsnap-loader-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/kernel", self->dir);
}

FIXTURE_TEARDOWN(kfile)
{
	unlink(self->path);
	rmdir(self->dir);
	mem__exit(&self->reg);
}

static int load_kernel(struct _fixture_kfile *self, const char *path, unsigned int nr_initrds)
{
	static const char *const initrds[] = {"/dev/null"};
	struct kernel_args args = {.path = path, .initrds = initrds, .nr_initrds = nr_initrds};
	struct capture c;
	struct error err;
	int ret;

	capture_begin(&c);
	ret = loader__load_kernel(&self->reg, &args, &self->boot, &err);
	capture_end(&c, self->out, sizeof(self->out));
	snprintf(self->err, sizeof(self->err), "%s", ret ? err.msg : "");
	return ret;
}

/* A "kernel PATH: ..." message containing why, and nothing printed. */
static void expect_error(struct _fixture_kfile *self, struct th_result *_r, const char *why)
{
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "kernel %s: ", self->path);
	if (!strstr(self->err, why))
		TH_LOG("err: %s", self->err);
	ASSERT_STREQ(self->out, "");
	ASSERT_EQ(strncmp(self->err, prefix, strlen(prefix)), 0);
	ASSERT_NOT_NULL(strstr(self->err, why));
}

TEST_F(kfile, loads_elf64_file)
{
	uint8_t img[IMG_SIZE];

	build_elf64(img);
	ASSERT_EQ(write_file(self->path, img, sizeof(img)), 0);
	ASSERT_EQ(load_kernel(self, self->path, 0), 0);
	EXPECT_STREQ(self->err, "");
	EXPECT_EQ(self->boot.mode, BOOT_LONG64);
	EXPECT_EQ(self->boot.entry, ENTRY);
}

TEST_F(kfile, missing_file)
{
	ASSERT_EQ(load_kernel(self, self->path, 0), -ENOENT);
	expect_error(self, _r, "No such file or directory");
}

TEST_F(kfile, empty_file)
{
	ASSERT_EQ(write_file(self->path, "", 0), 0);
	ASSERT_EQ(load_kernel(self, self->path, 0), -ENOEXEC);
	expect_error(self, _r, "file is empty");
}

TEST_F(kfile, directory)
{
	strcpy(self->path, self->dir);
	ASSERT_EQ(load_kernel(self, self->path, 0), -EINVAL);
	expect_error(self, _r, "not a regular file");
	self->path[0] = '\0';
}

TEST_F(kfile, too_large)
{
	int fd = open(self->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, RAM_SIZE + 1), 0); /* sparse */
	close(fd);
	ASSERT_EQ(load_kernel(self, self->path, 0), -EFBIG);
	expect_error(self, _r, "file is too large");
}

TEST_F(kfile, neither_elf64_nor_multiboot)
{
	static const char text[] = "#!/bin/sh\necho this is not a kernel\n";

	ASSERT_EQ(write_file(self->path, text, sizeof(text) - 1), 0);
	ASSERT_EQ(load_kernel(self, self->path, 0), -ENOEXEC);
	expect_error(self, _r,
		     "not an ELF64 x86-64 executable and no Multiboot header in its first 8 KiB");
}

TEST_F(kfile, elf32_without_multiboot)
{
	uint8_t img[IMG_SIZE];

	build_elf64(img);
	img[4] = 1;
	ASSERT_EQ(write_file(self->path, img, sizeof(img)), 0);
	ASSERT_EQ(load_kernel(self, self->path, 0), -ENOEXEC);
	expect_error(self, _r, "32-bit ELF without a Multiboot header in its first 8 KiB");
}

TEST_F(kfile, initrd_needs_multiboot)
{
	uint8_t img[IMG_SIZE];

	build_elf64(img);
	ASSERT_EQ(write_file(self->path, img, sizeof(img)), 0);
	ASSERT_EQ(load_kernel(self, self->path, 1), -EINVAL);
	expect_error(self, _r, "--initrd needs a Multiboot kernel");
	EXPECT_TRUE(all_zero(guest(&self->reg, TEXT_GPA, TEXT_SIZE), TEXT_SIZE));
}

TEST_F(kfile, malformed_elf64_file)
{
	uint8_t img[IMG_SIZE];

	build_elf64(img);
	w16(img + 18, 40); /* EM_ARM */
	ASSERT_EQ(write_file(self->path, img, sizeof(img)), 0);
	ASSERT_EQ(load_kernel(self, self->path, 0), -ENOEXEC);
	expect_error(self, _r, "ELF machine 40");
}

/* Fuzzing: mutated images must be loaded or refused, never crash. */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	return xorshift64(&rng_state);
}

/* clang-format off */
static const uint64_t interesting[] = {
	0, 1, 0x7f, 0x80, 0xff, 0x1000, 0xfffff, 0x100000, 0x1000000, RAM_SIZE,
	0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL, IMG_SIZE, 0x4000000, 0xfff00000,
	~0ULL, ~0ULL - 1, 1ULL << 63,
};
/* clang-format on */

/* A few mutations, mostly in the headers where the checks are. */
static size_t mutate(uint8_t *img, size_t len, size_t hot)
{
	unsigned int n = 1 + rnd() % 6, i;

	for (i = 0; i < n; i++) {
		size_t at = (rnd() % 4 ? rnd() % hot : rnd() % len);
		uint64_t v = interesting[rnd() % ARRAY_SIZE(interesting)];
		unsigned int w = 1u << (rnd() % 4);

		switch (rnd() % 4) {
		case 0:
			img[at] = (uint8_t)rnd();
			break;
		case 1:
			img[at] ^= 1u << (rnd() % 8);
			break;
		default:
			at &= ~(size_t)(w - 1);
			if (at + w > len)
				break;
			if (rnd() % 2)
				v += rnd() % 0x2000;
			while (w--) {
				img[at++] = (uint8_t)v;
				v >>= 8;
			}
		}
	}
	if (!(rnd() % 10))
		len = rnd() % len;
	return len;
}

TEST_TIMEOUT(fuzz_elf64, 120)
{
	struct pc_config cfg = {.ram_size = RAM_SIZE, .vram_size = 64 * KiB, .nr_cpus = 1};
	static const char *const initrds[] = {"/dev/null"};
	struct kernel_args args = {.path = NAME, .initrds = initrds};
	static uint8_t seed[IMG_SIZE], img[IMG_SIZE];
	unsigned int i, loaded = 0;
	struct mem_registry reg;
	struct error err;

	mem__init(&reg);
	ASSERT_EQ(pc__setup_memory(&reg, &cfg, NULL), 0);
	build_elf64(seed);
	for (i = 0; i < 5000; i++) {
		struct boot_state boot = {0};
		size_t len;
		int ret;

		memcpy(img, seed, sizeof(img));
		len = mutate(img, sizeof(img), EHDR_SIZE + 3 * PHDR_SIZE);
		args.nr_initrds = i % 7 == 0;
		ret = loader__load_image(&reg, &args, img, len, &boot, &err);
		if (ret > 0)
			break;
		if (ret)
			continue;
		loaded++;
		if (boot.mode != BOOT_LONG64 || boot.entry < KERNEL_MIN_GPA ||
		    boot.entry >= boot.image_end || boot.image_end > RAM_SIZE)
			break;
	}
	TH_LOG("%u of %u mutated images loaded", loaded, i);
	EXPECT_EQ(i, 5000);
	EXPECT_GT(loaded, 0);
	mem__exit(&reg);
}

TEST_TIMEOUT(fuzz_random_bytes, 120)
{
	struct pc_config cfg = {.ram_size = RAM_SIZE, .vram_size = 64 * KiB, .nr_cpus = 1};
	struct kernel_args args = {.path = NAME};
	static uint8_t img[IMG_SIZE];
	struct mem_registry reg;
	struct error err;
	unsigned int i, j;

	mem__init(&reg);
	ASSERT_EQ(pc__setup_memory(&reg, &cfg, NULL), 0);
	for (i = 0; i < 2000; i++) {
		struct boot_state boot = {0};
		size_t len = rnd() % sizeof(img);

		for (j = 0; j < len; j++)
			img[j] = (uint8_t)rnd();
		if (i % 2 && len >= 5) /* get past the magic half of the time */
			memcpy(img, "\177ELF\002", 5);
		if (loader__load_image(&reg, &args, img, len, &boot, &err) > 0)
			break;
	}
	EXPECT_EQ(i, 2000);
	mem__exit(&reg);
}

TEST_HARNESS_MAIN
