// SPDX-License-Identifier: GPL-2.0
/*
 * The Multiboot v1 loader on a PC registry without KVM: ELF32 and a.out
 * kludge kernels built here field by field, the entry registers, the
 * information structure (memory sizes, memory map, command line, modules),
 * the refusals, and a fuzz loop over mutated kernels.
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
#define VRAM_SIZE  (16 * MiB)
#define IMG_SIZE   0x2400
#define NAME	   "mb.elf"
#define ERR_PREFIX "kernel " NAME ": "
#define NO_HEADER  ERR_PREFIX "no Multiboot header in its first 8 KiB"

#define MB_MAGIC      0x1badb002u
#define MB_BOOT_MAGIC 0x2badb002u
#define MB_HDR_OFF    0x1000 /* file offset of the header: start of .text */

#define TEXT_GPA  0x100000ULL
#define TEXT_SIZE 0x100
#define DATA_GPA  0x101000ULL
#define DATA_FILE 0x10
#define DATA_MEM  0x1000
#define ENTRY	  (TEXT_GPA + 0x20)
#define IMAGE_END (DATA_GPA + DATA_MEM)

/* Information structure offsets and flags (Multiboot 0.6.96, section 3.3). */
#define MBI_FLAGS	0
#define MBI_MEM_LOWER	4
#define MBI_MEM_UPPER	8
#define MBI_CMDLINE	16
#define MBI_MODS_COUNT	20
#define MBI_MODS_ADDR	24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR	48
#define MBI_LOADER_NAME 64
#define MBI_F_MEM	(1u << 0)
#define MBI_F_CMDLINE	(1u << 2)
#define MBI_F_MODS	(1u << 3)
#define MBI_F_MMAP	(1u << 6)
#define MBI_F_LOADER	(1u << 9)

/* A Multiboot header with a correct checksum. */
static void put_mb_header(uint8_t *p, uint32_t flags)
{
	w32(p, MB_MAGIC);
	w32(p + 4, flags);
	w32(p + 8, -(MB_MAGIC + flags));
}

#define EHDR32	   52
#define PHDR32	   32
#define PH(img, i) ((img) + EHDR32 + (i)*PHDR32)

static void put_phdr32(uint8_t *img, unsigned int i, uint32_t flags, uint32_t off, uint32_t paddr,
		       uint32_t filesz, uint32_t memsz)
{
	uint8_t *p = PH(img, i);

	w32(p, PT_LOAD);
	w32(p + 4, off);
	w32(p + 8, paddr);
	w32(p + 12, paddr);
	w32(p + 16, filesz);
	w32(p + 20, memsz);
	w32(p + 24, flags);
	w32(p + 28, 0x1000);
}

/* An ELF32 i386 kernel: text (with the Multiboot header) at 1 MiB, then data. */
static void build_elf32(uint8_t *img, uint32_t mb_flags)
{
	unsigned int i;

	memset(img, 0, IMG_SIZE);
	memcpy(img, "\177ELF", 4);
	img[4] = 1; /* ELFCLASS32 */
	img[5] = 1;
	img[6] = 1;
	w16(img + 16, 2); /* ET_EXEC */
	w16(img + 18, 3); /* EM_386 */
	w32(img + 20, 1);
	w32(img + 24, ENTRY);
	w32(img + 28, EHDR32); /* e_phoff */
	w16(img + 40, EHDR32);
	w16(img + 42, PHDR32);
	w16(img + 44, 2);
	put_phdr32(img, 0, PF_R | PF_X, 0x1000, TEXT_GPA, TEXT_SIZE, TEXT_SIZE);
	put_phdr32(img, 1, PF_R | PF_W, 0x2000, DATA_GPA, DATA_FILE, DATA_MEM);
	for (i = 12; i < TEXT_SIZE; i++)
		img[0x1000 + i] = (uint8_t)(i * 3 + 5);
	for (i = 0; i < DATA_FILE; i++)
		img[0x2000 + i] = (uint8_t)(0x5a ^ i);
	put_mb_header(img + MB_HDR_OFF, mb_flags);
}

/*
 * A raw a.out-kludge kernel: the file is loaded from offset 0 at 1 MiB, the
 * header sits at offset 0x10, bss up to 1 MiB + 8 KiB.
 */
#define AOUT_SIZE	0x600
#define AOUT_HDR	0x10
#define AOUT_ENTRY	(TEXT_GPA + 0x40)
#define AOUT_BSS_END	(TEXT_GPA + 0x2000)
#define AOUT_HEADER_GPA (TEXT_GPA + AOUT_HDR)

static void build_aout(uint8_t *img)
{
	uint8_t *h = img + AOUT_HDR;
	unsigned int i;

	for (i = 0; i < AOUT_SIZE; i++)
		img[i] = (uint8_t)(i ^ 0xa5);
	put_mb_header(h, 0x10003);
	w32(h + 12, AOUT_HEADER_GPA);	   /* header_addr */
	w32(h + 16, TEXT_GPA);		   /* load_addr */
	w32(h + 20, TEXT_GPA + AOUT_SIZE); /* load_end_addr */
	w32(h + 24, AOUT_BSS_END);	   /* bss_end_addr */
	w32(h + 28, AOUT_ENTRY);	   /* entry_addr */
}

#define MOD0_SIZE 5000
#define MOD1_SIZE 10

FIXTURE(mb)
{
	struct mem_registry reg;
	uint8_t img[IMG_SIZE];
	size_t len;
	struct kernel_args args;
	const char *initrds[2];
	char dir[64], mod0[96], mod1[96];
	struct boot_state boot;
	char err[ERROR_MSG_MAX]; /* err.msg of the last failed load, or "" */
	char out[4096];		 /* what the load printed: always nothing */
};

FIXTURE_SETUP(mb)
{
	struct pc_config cfg = {.ram_size = RAM_SIZE, .vram_size = VRAM_SIZE, .nr_cpus = 1};
	uint8_t data[MOD0_SIZE];
	unsigned int i;

	mem__init(&self->reg);
	ASSERT_EQ(pc__setup_memory(&self->reg, &cfg, NULL), 0);
	build_elf32(self->img, 0x3);
	self->len = IMG_SIZE;

	strcpy(self->dir, "/tmp/kvmsnap-mb-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->mod0, sizeof(self->mod0), "%s/module0", self->dir);
	snprintf(self->mod1, sizeof(self->mod1), "%s/module1", self->dir);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	ASSERT_EQ(write_file(self->mod0, data, MOD0_SIZE), 0);
	ASSERT_EQ(write_file(self->mod1, "0123456789", MOD1_SIZE), 0);
	self->initrds[0] = self->mod0;
	self->initrds[1] = self->mod1;
	self->args.path = NAME;
}

FIXTURE_TEARDOWN(mb)
{
	unlink(self->mod0);
	unlink(self->mod1);
	rmdir(self->dir);
	mem__exit(&self->reg);
}

static int load_mb(struct _fixture_mb *self)
{
	struct capture c;
	struct error err;
	int ret;

	capture_begin(&c);
	ret = loader__load_multiboot(&self->reg, &self->args, self->img, self->len, &self->boot,
				     &err);
	capture_end(&c, self->out, sizeof(self->out));
	snprintf(self->err, sizeof(self->err), "%s", ret ? err.msg : "");
	return ret;
}

static int load_image(struct _fixture_mb *self)
{
	struct capture c;
	struct error err;
	int ret;

	capture_begin(&c);
	ret = loader__load_image(&self->reg, &self->args, self->img, self->len, &self->boot, &err);
	capture_end(&c, self->out, sizeof(self->out));
	snprintf(self->err, sizeof(self->err), "%s", ret ? err.msg : "");
	return ret;
}

static uint8_t *g(struct _fixture_mb *self, uint64_t gpa, uint64_t len)
{
	return mem__gpa_to_host(&self->reg, gpa, len);
}

/* A guest string that must lie inside the Multiboot info area. */
static const char *gstr(struct _fixture_mb *self, uint32_t gpa)
{
	if (gpa < MB_INFO_GPA || gpa >= MB_INFO_END)
		return NULL;
	return (const char *)g(self, gpa, 1);
}

static void expect_error(struct _fixture_mb *self, struct th_result *_r, int ret, int want,
			 const char *why)
{
	if (ret != want || !strstr(self->err, why))
		TH_LOG("ret %d, err: %s", ret, self->err);
	ASSERT_EQ(ret, want);
	ASSERT_STREQ(self->out, "");
	ASSERT_NOT_NULL(strstr(self->err, why));
}

/* Refused by loader__load_multiboot before anything reaches guest memory. */
static void expect_reject(struct _fixture_mb *self, struct th_result *_r, const char *why)
{
	expect_error(self, _r, load_mb(self), -ENOEXEC, why);
	ASSERT_EQ(strncmp(self->err, ERR_PREFIX, strlen(ERR_PREFIX)), 0);
	ASSERT_TRUE(all_zero(g(self, TEXT_GPA, PAGE_SIZE), PAGE_SIZE));
	ASSERT_TRUE(all_zero(g(self, MB_INFO_GPA, PAGE_SIZE), PAGE_SIZE));
}

TEST_F(mb, elf32_loads)
{
	const uint8_t *info, *mod;
	uint32_t flags;

	self->args.append = "hello world";
	self->args.initrds = self->initrds;
	self->args.nr_initrds = 2;
	ASSERT_EQ(load_mb(self), 0);
	EXPECT_STREQ(self->err, "");

	EXPECT_EQ(self->boot.mode, BOOT_MULTIBOOT1);
	EXPECT_EQ(self->boot.entry, ENTRY);
	EXPECT_EQ(self->boot.eax, MB_BOOT_MAGIC);
	EXPECT_EQ(self->boot.ebx, MB_INFO_GPA);
	EXPECT_EQ(memcmp(g(self, TEXT_GPA, TEXT_SIZE), self->img + 0x1000, TEXT_SIZE), 0);
	EXPECT_EQ(memcmp(g(self, DATA_GPA, DATA_FILE), self->img + 0x2000, DATA_FILE), 0);
	EXPECT_TRUE(
	    all_zero(g(self, DATA_GPA + DATA_FILE, DATA_MEM - DATA_FILE), DATA_MEM - DATA_FILE));

	info = g(self, MB_INFO_GPA, 116);
	flags = r32(info + MBI_FLAGS);
	EXPECT_EQ(flags & (MBI_F_MEM | MBI_F_CMDLINE | MBI_F_MODS | MBI_F_MMAP | MBI_F_LOADER),
		  MBI_F_MEM | MBI_F_CMDLINE | MBI_F_MODS | MBI_F_MMAP | MBI_F_LOADER);
	EXPECT_EQ(r32(info + MBI_MEM_LOWER), 640);
	EXPECT_EQ(r32(info + MBI_MEM_UPPER), (RAM_SIZE - MiB) / KiB);
	EXPECT_STREQ(gstr(self, r32(info + MBI_CMDLINE)), NAME " hello world");
	EXPECT_STREQ(gstr(self, r32(info + MBI_LOADER_NAME)), "kvmsnap");

	/* Modules: page-aligned after the kernel, in order, named by their files. */
	ASSERT_EQ(r32(info + MBI_MODS_COUNT), 2);
	mod = g(self, r32(info + MBI_MODS_ADDR), 32);
	ASSERT_NOT_NULL(mod);
	EXPECT_LT(r32(info + MBI_MODS_ADDR) + 32, MB_INFO_END);
	EXPECT_EQ(r32(mod), IMAGE_END);
	EXPECT_EQ(r32(mod + 4), IMAGE_END + MOD0_SIZE);
	EXPECT_STREQ(gstr(self, r32(mod + 8)), self->mod0);
	EXPECT_EQ(r32(mod + 16), ALIGN_UP(IMAGE_END + MOD0_SIZE, PAGE_SIZE));
	EXPECT_EQ(r32(mod + 20), r32(mod + 16) + MOD1_SIZE);
	EXPECT_STREQ(gstr(self, r32(mod + 24)), self->mod1);
	EXPECT_EQ(g(self, IMAGE_END, MOD0_SIZE)[4999], (uint8_t)(4999 * 13));
	EXPECT_EQ(memcmp(g(self, r32(mod + 16), MOD1_SIZE), "0123456789", MOD1_SIZE), 0);
	EXPECT_EQ(self->boot.image_end, ALIGN_UP(r32(mod + 20), PAGE_SIZE));
}

TEST_F(mb, memory_map_follows_registry)
{
	/* clang-format off */
	static const struct {
		uint64_t base, len;
		uint32_t type;
	} want[] = {
		{0, LOW_RAM_END, 1},
		{VGA_TEXT_GPA, VGA_TEXT_SIZE, 2},
		{OPTION_ROM_GPA, OPTION_ROM_SIZE, 2},
		{ACPI_GPA, ACPI_SIZE, 3},
		{HIGH_RAM_START, RAM_SIZE - HIGH_RAM_START, 1},
		{VGA_LFB_GPA, VRAM_SIZE, 2},
		{BIOS_GPA, BIOS_SIZE, 2},
	};
	/* clang-format on */
	const uint8_t *info, *e;
	unsigned int i;

	ASSERT_EQ(load_mb(self), 0);
	info = g(self, MB_INFO_GPA, 116);
	ASSERT_EQ(r32(info + MBI_MMAP_LENGTH), ARRAY_SIZE(want) * 24);
	ASSERT_GE(r32(info + MBI_MMAP_ADDR), MB_INFO_GPA);
	ASSERT_LE(r32(info + MBI_MMAP_ADDR) + r32(info + MBI_MMAP_LENGTH), MB_INFO_END);
	e = g(self, r32(info + MBI_MMAP_ADDR), r32(info + MBI_MMAP_LENGTH));
	for (i = 0; i < ARRAY_SIZE(want); i++, e += 24) {
		EXPECT_EQ(r32(e), 20); /* size, not counting itself */
		EXPECT_EQ(r64(e + 4), want[i].base);
		EXPECT_EQ(r64(e + 12), want[i].len);
		EXPECT_EQ(r32(e + 20), want[i].type);
	}
}

TEST(memory_map_and_mem_upper_with_ram_above_4g)
{
	struct pc_config cfg = {.ram_size = 5 * GiB, .vram_size = VRAM_SIZE, .nr_cpus = 1};
	struct kernel_args args = {.path = NAME};
	static uint8_t img[IMG_SIZE];
	struct boot_state boot;
	struct mem_registry reg;
	const uint8_t *info, *e;

	mem__init(&reg);
	ASSERT_EQ(pc__setup_memory(&reg, &cfg, NULL), 0);
	build_elf32(img, 0x3);
	ASSERT_EQ(loader__load_multiboot(&reg, &args, img, IMG_SIZE, &boot, NULL), 0);
	info = mem__gpa_to_host(&reg, MB_INFO_GPA, 116);
	EXPECT_EQ(r32(info + MBI_MEM_UPPER), (LOW_RAM_LIMIT - MiB) / KiB);
	ASSERT_EQ(r32(info + MBI_MMAP_LENGTH), 8 * 24);
	e = mem__gpa_to_host(&reg, r32(info + MBI_MMAP_ADDR) + 7 * 24, 24);
	EXPECT_EQ(r64(e + 4), HIGH_MEM_START);
	EXPECT_EQ(r64(e + 12), 5 * GiB - LOW_RAM_LIMIT);
	EXPECT_EQ(r32(e + 20), 1);
	mem__exit(&reg);
}

TEST_F(mb, cmdline_without_append_and_no_modules)
{
	const uint8_t *info;

	ASSERT_EQ(load_mb(self), 0);
	info = g(self, MB_INFO_GPA, 116);
	EXPECT_STREQ(gstr(self, r32(info + MBI_CMDLINE)), NAME);
	EXPECT_EQ(r32(info + MBI_MODS_COUNT), 0);
	EXPECT_EQ(self->boot.image_end, IMAGE_END);
}

TEST_F(mb, gdt_is_built)
{
	const uint8_t *gdt;

	ASSERT_EQ(load_mb(self), 0);
	gdt = g(self, BOOT_GDT_GPA, BOOT_GDT_SIZE);
	EXPECT_EQ(r64(gdt + BOOT_CS32), 0x00cf9b000000ffffULL);
	EXPECT_EQ(r64(gdt + BOOT_DS), 0x00cf93000000ffffULL);
}

TEST_F(mb, detected_by_load_image)
{
	ASSERT_EQ(load_image(self), 0);
	EXPECT_EQ(self->boot.mode, BOOT_MULTIBOOT1);
}

TEST_F(mb, header_at_last_offset_in_8k)
{
	/* 12 bytes at 8180 end exactly at 8 KiB. */
	memset(self->img + MB_HDR_OFF, 0, 12);
	put_mb_header(self->img + 8180, 0x3);
	ASSERT_EQ(load_mb(self), 0);
}

TEST_F(mb, optional_flags_are_ignored)
{
	put_mb_header(self->img + MB_HDR_OFF, 0x3 | (1u << 20));
	ASSERT_EQ(load_mb(self), 0);
}

TEST_F(mb, elf64_multiboot_kernel)
{
	/* GRUB loads ELF64 Multiboot kernels too; entered in 32-bit mode all the same. */
	const struct phdr64 text = {PT_LOAD,  PF_R | PF_X, 0x1000,   TEXT_GPA,
				    TEXT_GPA, TEXT_SIZE,   TEXT_SIZE};
	uint8_t *p = self->img;

	memset(p, 0, 0x1000);
	elf64_put_ehdr(p, ENTRY, 1);
	elf64_put_phdr(p, 0, &text);
	ASSERT_EQ(load_image(self), 0);
	EXPECT_EQ(self->boot.mode, BOOT_MULTIBOOT1);
	EXPECT_EQ(self->boot.entry, ENTRY);
}

/* The a.out kludge. */

TEST_F(mb, aout_kludge_loads)
{
	build_aout(self->img);
	self->len = AOUT_SIZE;
	ASSERT_EQ(load_mb(self), 0);
	EXPECT_STREQ(self->err, "");
	EXPECT_EQ(self->boot.mode, BOOT_MULTIBOOT1);
	EXPECT_EQ(self->boot.entry, AOUT_ENTRY);
	EXPECT_EQ(self->boot.eax, MB_BOOT_MAGIC);
	EXPECT_EQ(self->boot.image_end, AOUT_BSS_END);
	EXPECT_EQ(memcmp(g(self, TEXT_GPA, AOUT_SIZE), self->img, AOUT_SIZE), 0);
	EXPECT_TRUE(all_zero(g(self, TEXT_GPA + AOUT_SIZE, AOUT_BSS_END - TEXT_GPA - AOUT_SIZE),
			     AOUT_BSS_END - TEXT_GPA - AOUT_SIZE));
}

TEST_F(mb, aout_kludge_wins_over_elf)
{
	/* With flag bit 16 the address fields are used even in an ELF file. */
	uint8_t *h = self->img + MB_HDR_OFF;

	put_mb_header(h, 0x10003);
	w32(h + 12, 0x300000 + MB_HDR_OFF); /* the whole file at 3 MiB */
	w32(h + 16, 0x300000);
	w32(h + 20, 0);
	w32(h + 24, 0);
	w32(h + 28, 0x300000 + MB_HDR_OFF + 0x40);
	ASSERT_EQ(load_mb(self), 0);
	EXPECT_EQ(self->boot.entry, 0x300000 + MB_HDR_OFF + 0x40);
	EXPECT_EQ(self->boot.image_end, 0x300000 + ALIGN_UP(IMG_SIZE, PAGE_SIZE));
	EXPECT_EQ(memcmp(g(self, 0x300000, IMG_SIZE), self->img, IMG_SIZE), 0);
	EXPECT_TRUE(all_zero(g(self, TEXT_GPA, TEXT_SIZE), TEXT_SIZE));
}

TEST_F(mb, aout_load_from_header_offset)
{
	/* load_addr above the file start: loading begins inside the file. */
	uint8_t *h;

	build_aout(self->img);
	h = self->img + AOUT_HDR;
	w32(h + 12, TEXT_GPA + 0x8);   /* header_addr: the file is loaded from offset 8 */
	w32(h + 20, TEXT_GPA + 0x100); /* load_end_addr */
	w32(h + 24, 0);		       /* no bss */
	self->len = AOUT_SIZE;
	ASSERT_EQ(load_mb(self), 0);
	EXPECT_EQ(memcmp(g(self, TEXT_GPA, 0x100), self->img + 8, 0x100), 0);
	EXPECT_EQ(self->boot.image_end, TEXT_GPA + PAGE_SIZE);
}

TEST_F(mb, aout_rejects_load_before_file)
{
	build_aout(self->img);
	w32(self->img + AOUT_HDR + 16, TEXT_GPA - 0x100); /* load_addr 0x100 before offset 0 */
	w32(self->img + AOUT_HDR + 12, TEXT_GPA);
	expect_reject(self, _r, "load_addr 0xfff00 is before the file");
}

TEST_F(mb, aout_rejects_load_addr_above_header)
{
	build_aout(self->img);
	w32(self->img + AOUT_HDR + 16, AOUT_HEADER_GPA + 4);
	expect_reject(self, _r, "is before the file");
}

TEST_F(mb, aout_rejects_load_end_below_load_addr)
{
	build_aout(self->img);
	w32(self->img + AOUT_HDR + 20, TEXT_GPA - 1);
	expect_reject(self, _r, "load_end_addr 0xfffff is below load_addr");
}

TEST_F(mb, aout_rejects_load_end_past_eof)
{
	build_aout(self->img);
	self->len = AOUT_SIZE - 1;
	expect_reject(self, _r, "load_end_addr 0x100600 is past the end of the file");
}

TEST_F(mb, aout_rejects_bss_end_below_load_end)
{
	build_aout(self->img);
	w32(self->img + AOUT_HDR + 24, TEXT_GPA + 0x10);
	expect_reject(self, _r, "bss_end_addr 0x100010 is below load_end_addr");
}

TEST_F(mb, aout_rejects_entry_outside_image)
{
	build_aout(self->img);
	w32(self->img + AOUT_HDR + 28, TEXT_GPA + AOUT_SIZE); /* in bss: not loaded code */
	expect_reject(self, _r, "entry_addr 0x100600 is outside the loaded image");
}

TEST_F(mb, aout_rejects_low_memory)
{
	build_aout(self->img);
	w32(self->img + AOUT_HDR + 12, 0x8000 + AOUT_HDR);
	w32(self->img + AOUT_HDR + 16, 0x8000);
	w32(self->img + AOUT_HDR + 20, 0);
	w32(self->img + AOUT_HDR + 24, 0);
	w32(self->img + AOUT_HDR + 28, 0x8040);
	expect_reject(self, _r, "segment at 0x8000 is below 0x100000");
}

TEST_F(mb, aout_rejects_past_ram)
{
	build_aout(self->img);
	w32(self->img + AOUT_HDR + 24, RAM_SIZE + 0x1000);
	expect_reject(self, _r, "extends past the end of guest RAM");
}

TEST_F(mb, aout_rejects_truncated_header)
{
	build_aout(self->img);
	self->len = AOUT_HDR + 20;
	expect_reject(self, _r, "is cut off by the end of the file");
}

/* Refusals. */

TEST_F(mb, bad_checksum_is_no_header)
{
	w32(self->img + MB_HDR_OFF + 8, 0);
	ASSERT_EQ(load_mb(self), -ENOENT);
	EXPECT_STREQ(self->err, NO_HEADER);
	EXPECT_STREQ(self->out, "");
	expect_error(self, _r, load_image(self), -ENOEXEC,
		     ERR_PREFIX "Multiboot header at offset 0x1000 has a bad checksum");
}

TEST_F(mb, header_past_8k_is_no_header)
{
	memset(self->img + MB_HDR_OFF, 0, 12);
	put_mb_header(self->img + 8184, 0x3);
	ASSERT_EQ(load_mb(self), -ENOENT);
	EXPECT_STREQ(self->err, NO_HEADER);
	EXPECT_STREQ(self->out, "");
	expect_error(self, _r, load_image(self), -ENOEXEC,
		     ERR_PREFIX "32-bit ELF without a Multiboot header in its first 8 KiB");
}

TEST_F(mb, misaligned_header_is_no_header)
{
	memset(self->img + MB_HDR_OFF, 0, 12);
	put_mb_header(self->img + MB_HDR_OFF + 2, 0x3);
	ASSERT_EQ(load_mb(self), -ENOENT);
}

TEST_F(mb, rejects_video_mode)
{
	put_mb_header(self->img + MB_HDR_OFF, 0x7);
	expect_reject(self, _r, "video mode (flags bit 2) is not supported");
}

TEST_F(mb, rejects_unknown_required_flag)
{
	put_mb_header(self->img + MB_HDR_OFF, 0x3 | (1u << 5));
	expect_reject(self, _r, "flags 0x00000023: unsupported required bits 0x0020");
}

TEST_F(mb, rejects_raw_file_without_kludge)
{
	memset(self->img, 0, MB_HDR_OFF);
	expect_reject(self, _r, "neither ELF nor has load addresses");
}

TEST_F(mb, rejects_elf32_wrong_machine)
{
	w16(self->img + 18, 62);
	expect_reject(self, _r, "ELF machine 62 is not i386");
}

TEST_F(mb, rejects_elf32_segment_past_ram)
{
	w32(PH(self->img, 1) + 12, RAM_SIZE - 0x800);
	expect_reject(self, _r, "program header 1: segment at 0x3fff800-0x4000800 extends past");
}

TEST_F(mb, rejects_elf32_segment_past_eof)
{
	w32(PH(self->img, 1) + 16, IMG_SIZE);
	expect_reject(self, _r, "program header 1: data at 0x2000+0x2400 is past end of file");
}

TEST_F(mb, rejects_elf32_segment_wrapping_4g)
{
	w32(PH(self->img, 1) + 12, 0xfffff000);
	w32(PH(self->img, 1) + 20, 0x2000);
	expect_reject(self, _r, "is not in guest RAM");
}

TEST_F(mb, rejects_elf32_entry_outside)
{
	w32(self->img + 24, DATA_GPA);
	expect_reject(self, _r, "entry point 0x101000 is not inside an executable segment");
}

TEST_F(mb, rejects_elf32_truncated)
{
	/* The header is found, then the program headers are missing. */
	memmove(self->img + 0x100, self->img + MB_HDR_OFF, 12);
	self->len = 0x10c;
	w32(self->img + 28, 0x200);
	expect_reject(self, _r, "extend past the end of the file");
}

TEST_F(mb, rejects_info_overflow)
{
	static char append[60000];

	memset(append, 'x', sizeof(append) - 1);
	self->args.append = append;
	expect_error(self, _r, load_mb(self), -E2BIG, "exceeds 49152 bytes");
	EXPECT_TRUE(all_zero(g(self, TEXT_GPA, PAGE_SIZE), PAGE_SIZE));
}

TEST_F(mb, rejects_missing_module)
{
	const char *missing[] = {"/nonexistent/module"};

	self->args.initrds = missing;
	self->args.nr_initrds = 1;
	expect_error(self, _r, load_mb(self), -ENOENT,
		     "initrd /nonexistent/module: No such file or directory");
}

TEST_F(mb, rejects_module_too_big)
{
	const char *big[] = {self->mod0};
	int fd = open(self->mod0, O_WRONLY);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, RAM_SIZE), 0); /* sparse */
	close(fd);
	self->args.initrds = big;
	self->args.nr_initrds = 1;
	expect_error(self, _r, load_mb(self), -ENOMEM, "do not fit in guest RAM");
}

/* Fuzzing: mutated kernels must be loaded or refused, never crash. */

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	return xorshift64(&rng_state);
}

/* clang-format off */
static const uint32_t interesting[] = {
	0, 1, 0x7f, 0xff, 0x1000, 0xfffff, 0x100000, 0x101000, 0x1000000, RAM_SIZE,
	0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff0, IMG_SIZE, 0x4000000,
	0x10000, 0x10003, 0x1badb002,
};
/* clang-format on */

/* Mutate mostly the headers; half the time repair the Multiboot checksum. */
static size_t mutate(uint8_t *img, size_t len, size_t hdr)
{
	unsigned int n = 1 + rnd() % 5, i;

	for (i = 0; i < n; i++) {
		size_t at;
		uint32_t v = interesting[rnd() % ARRAY_SIZE(interesting)];

		switch (rnd() % 3) {
		case 0: /* ELF header and program headers */
			at = rnd() % (EHDR32 + 2 * PHDR32);
			break;
		case 1: /* the Multiboot header */
			at = hdr + rnd() % 32;
			break;
		default:
			at = rnd() % len;
		}
		if (rnd() % 2) {
			img[at] = (uint8_t)rnd();
		} else {
			at &= ~(size_t)3;
			if (at + 4 <= len)
				w32(img + at, v + (rnd() % 2 ? (uint32_t)(rnd() % 0x2000) : 0));
		}
	}
	if (rnd() % 2)
		w32(img + hdr + 8, -(r32(img + hdr) + r32(img + hdr + 4)));
	if (!(rnd() % 10))
		len = rnd() % len;
	return len;
}

static void fuzz(struct th_result *_r, void (*build)(uint8_t *), size_t size, size_t hdr)
{
	struct pc_config cfg = {.ram_size = RAM_SIZE, .vram_size = 64 * KiB, .nr_cpus = 1};
	static uint8_t seed[IMG_SIZE], img[IMG_SIZE];
	char mod0[] = "/tmp/kvmsnap-mod-XXXXXX", mod1[] = "/tmp/kvmsnap-mod-XXXXXX";
	const char *initrds[] = {mod0, mod1};
	struct kernel_args args = {.path = NAME, .append = "a b", .initrds = initrds};
	unsigned int i, loaded = 0;
	struct mem_registry reg;
	struct error err;
	int fd;

	fd = mkstemp(mod0);
	ASSERT_GE(fd, 0);
	close(fd); /* empty */
	fd = mkstemp(mod1);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "module\n", 7), 7);
	close(fd);
	mem__init(&reg);
	ASSERT_EQ(pc__setup_memory(&reg, &cfg, NULL), 0);
	build(seed);
	for (i = 0; i < 4000; i++) {
		struct boot_state boot = {0};
		size_t len;
		int ret;

		memcpy(img, seed, size);
		len = mutate(img, size, hdr);
		args.nr_initrds = i % 3;
		ret = loader__load_image(&reg, &args, img, len, &boot, &err);
		if (ret > 0)
			break;
		if (ret || boot.mode != BOOT_MULTIBOOT1)
			continue;
		loaded++;
		if (boot.eax != MB_BOOT_MAGIC || boot.ebx != MB_INFO_GPA ||
		    boot.entry < KERNEL_MIN_GPA || boot.entry >= boot.image_end ||
		    boot.image_end > RAM_SIZE)
			break;
	}
	unlink(mod0);
	unlink(mod1);
	TH_LOG("%u of %u mutated kernels loaded as Multiboot", loaded, i);
	EXPECT_EQ(i, 4000);
	EXPECT_GT(loaded, 0);
	mem__exit(&reg);
}

static void build_elf32_default(uint8_t *img)
{
	build_elf32(img, 0x3);
}

FIXTURE(fuzz){};

/* What is fuzzed: an image of size bytes, its multiboot header at hdr. */
FIXTURE_VARIANT(fuzz)
{
	void (*build)(uint8_t * img);
	size_t size, hdr;
};

FIXTURE_VARIANT_ADD(fuzz, multiboot_elf32){
    .build = build_elf32_default, .size = IMG_SIZE, .hdr = MB_HDR_OFF};
FIXTURE_VARIANT_ADD(fuzz, multiboot_aout){.build = build_aout, .size = AOUT_SIZE, .hdr = AOUT_HDR};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

TEST_F_TIMEOUT(fuzz, loader, 120)
{
	fuzz(_r, variant->build, variant->size, variant->hdr);
}

TEST_HARNESS_MAIN
