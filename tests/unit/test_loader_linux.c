// SPDX-License-Identifier: GPL-2.0
/*
 * The Linux bzImage loader on a PC registry without KVM: synthetic setup
 * headers built here field by field, the header checks and their one-line
 * refusals, the zero page (setup header, command line, initrd, RSDP, E820),
 * where the kernel and the initrd land, and a fuzz loop over mutated
 * headers.
 */
#include <fcntl.h>
#include <lzma.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include "../harness.h"
#include "../lib/elf-build.h"

#include "vmm/layout.h"
#include "vmm/loader/linux.h"
#include "vmm/loader/loader.h"
#include "vmm/loader/unpack.h"
#include "vmm/mem.h"
#include "vmm/pc.h"
#include "vmm/util/util.h"

#define RAM_SIZE    (64 * MiB)
#define VRAM_SIZE   (16 * MiB)
#define SETUP_SECTS 4
#define SETUP_BYTES ((SETUP_SECTS + 1) * 512)
#define KERNEL_SIZE 0x2000
#define IMG_SIZE    (SETUP_BYTES + KERNEL_SIZE + 0x100) /* a signature may follow */
#define PREF_ADDR   0x1000000ULL
#define INIT_SIZE   (8 * MiB)
#define NAME	    "bzImage"
#define ERR_PREFIX  "kernel " NAME ": "
#define INITRD0_LEN 5000
#define INITRD1_LEN 300

/* A bzImage as boot.rst describes it: the fields this loader reads. */
static void build_bzimage(uint8_t *img)
{
	size_t i;

	memset(img, 0, IMG_SIZE);
	img[BZ_SETUP_SECTS] = SETUP_SECTS;
	w32(img + BZ_SYSSIZE, KERNEL_SIZE / 16);
	w16(img + BZ_BOOT_FLAG, 0xaa55);
	img[BZ_JUMP] = 0xeb;
	img[BZ_JUMP + 1] = 0x6a; /* the header ends at 0x26c, as in Linux 6.1 */
	memcpy(img + BZ_HEADER, "HdrS", 4);
	w16(img + BZ_VERSION, 0x020f);
	img[BZ_LOADFLAGS] = 0x01;
	w32(img + BZ_INITRD_ADDR_MAX, 0x7fffffff);
	w32(img + BZ_KERNEL_ALIGNMENT, 0x200000);
	img[BZ_RELOCATABLE] = 1;
	w16(img + BZ_XLOADFLAGS, 0x7f);
	w32(img + BZ_CMDLINE_SIZE, 2047);
	w64(img + BZ_PREF_ADDRESS, PREF_ADDR);
	w32(img + BZ_INIT_SIZE, INIT_SIZE);
	for (i = SETUP_BYTES; i < IMG_SIZE; i++)
		img[i] = (uint8_t)(i * 7 + 1);
}

FIXTURE(lx)
{
	struct mem_registry reg;
	uint8_t img[IMG_SIZE];
	size_t len;
	struct kernel_args args;
	const char *initrds[2];
	char dir[64], rd0[96], rd1[96];
	struct boot_state boot;
	char err[ERROR_MSG_MAX];
	char out[4096];
	struct kernel_report rep;
};

FIXTURE_SETUP(lx)
{
	struct pc_config cfg = {.ram_size = RAM_SIZE, .vram_size = VRAM_SIZE, .nr_cpus = 1};
	uint8_t data[INITRD0_LEN];
	unsigned int i;

	mem__init(&self->reg);
	ASSERT_EQ(pc__setup_memory(&self->reg, &cfg, NULL), 0);
	build_bzimage(self->img);
	self->len = IMG_SIZE;
	strcpy(self->dir, "/tmp/kvmsnap-lx-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->rd0, sizeof(self->rd0), "%s/initrd0", self->dir);
	snprintf(self->rd1, sizeof(self->rd1), "%s/initrd1", self->dir);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 5);
	ASSERT_EQ(write_file(self->rd0, data, INITRD0_LEN), 0);
	memset(data, 0x5a, INITRD1_LEN);
	ASSERT_EQ(write_file(self->rd1, data, INITRD1_LEN), 0);
	self->initrds[0] = self->rd0;
	self->initrds[1] = self->rd1;
	self->args.path = NAME;
}

FIXTURE_TEARDOWN(lx)
{
	unlink(self->rd0);
	unlink(self->rd1);
	rmdir(self->dir);
	mem__exit(&self->reg);
}

/* Through the format detection, as `kvmsnap run --kernel` does it. */
static int load(struct _fixture_lx *self)
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

static uint8_t *g(struct _fixture_lx *self, uint64_t gpa, uint64_t len)
{
	return mem__gpa_to_host(&self->reg, gpa, len);
}

static uint8_t *zero_page(struct _fixture_lx *self)
{
	return g(self, LINUX_ZERO_PAGE_GPA, ZP_SIZE);
}

/* Refused with one message naming the cause; nothing printed, no zero page. */
static void expect_reject(struct _fixture_lx *self, struct th_result *_r, int want, const char *why)
{
	int ret = load(self);

	if (ret != want || !strstr(self->err, why))
		TH_LOG("ret %d, err: %s", ret, self->err);
	ASSERT_EQ(ret, want);
	ASSERT_STREQ(self->out, "");
	ASSERT_NOT_NULL(strstr(self->err, why));
	ASSERT_EQ(strchr(self->err, '\n'), NULL);
	ASSERT_TRUE(all_zero(zero_page(self), ZP_SIZE));
}

TEST_F(lx, header_is_parsed)
{
	struct bzimage bz;

	ASSERT_EQ(bzimage__parse(self->img, self->len, NAME, &bz, NULL), 0);
	EXPECT_EQ(bz.version, 0x020f);
	EXPECT_EQ(bz.setup_bytes, SETUP_BYTES);
	EXPECT_EQ(bz.kernel_bytes, KERNEL_SIZE);
	EXPECT_EQ(bz.hdr_end, 0x26c);
	EXPECT_EQ(bz.initrd_addr_max, 0x7fffffff);
	EXPECT_EQ(bz.kernel_alignment, 0x200000);
	EXPECT_EQ(bz.cmdline_size, 2047);
	EXPECT_EQ(bz.pref_address, PREF_ADDR);
	EXPECT_EQ(bz.init_size, INIT_SIZE);
}

TEST_F(lx, setup_sects_zero_means_four)
{
	struct bzimage bz;

	self->img[BZ_SETUP_SECTS] = 0;
	ASSERT_EQ(bzimage__parse(self->img, self->len, NAME, &bz, NULL), 0);
	EXPECT_EQ(bz.setup_bytes, 5 * 512);
}

TEST_F(lx, detection)
{
	static const uint8_t elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};

	EXPECT_TRUE(bzimage__detect(self->img, self->len));
	EXPECT_FALSE(bzimage__detect(elf, sizeof(elf)));
	EXPECT_FALSE(bzimage__detect(self->img, BZ_BOOT_FLAG));
	memcpy(self->img + BZ_HEADER, "HdrX", 4);
	EXPECT_TRUE(bzimage__detect(self->img, self->len)); /* the boot flag still says so */
	w16(self->img + BZ_BOOT_FLAG, 0);
	EXPECT_FALSE(bzimage__detect(self->img, self->len));
}

TEST_F(lx, loads_kernel_initrd_cmdline_and_zero_page)
{
	const uint64_t rd_len = INITRD0_LEN + INITRD1_LEN;
	const uint64_t rd_gpa = ALIGN_DOWN(RAM_SIZE - rd_len, PAGE_SIZE);
	const uint8_t *zp, *rd, *gdt;

	self->args.append = "console=ttyS0 quiet";
	self->args.initrds = self->initrds;
	self->args.nr_initrds = 2;
	ASSERT_EQ(load(self), 0);
	ASSERT_STREQ(self->out, "");

	/* 64-bit entry at load address + 0x200, RSI = the zero page. */
	EXPECT_EQ(self->boot.mode, BOOT_LINUX64);
	EXPECT_EQ(self->boot.entry, PREF_ADDR + 0x200);
	EXPECT_EQ(self->boot.rsi, LINUX_ZERO_PAGE_GPA);
	EXPECT_EQ(self->boot.image_end, rd_gpa + rd_len);
	/* The protected-mode kernel, and nothing of the setup code, at its address. */
	ASSERT_EQ(memcmp(g(self, PREF_ADDR, KERNEL_SIZE), self->img + SETUP_BYTES, KERNEL_SIZE), 0);
	EXPECT_TRUE(all_zero(g(self, PREF_ADDR + KERNEL_SIZE, PAGE_SIZE), PAGE_SIZE));

	zp = zero_page(self);
	/* The setup header as the file has it, then the loader's fields. */
	EXPECT_EQ(memcmp(zp + BZ_HEADER, "HdrS", 4), 0);
	EXPECT_EQ(zp[BZ_VERSION] | zp[BZ_VERSION + 1] << 8, 0x020f);
	EXPECT_EQ(r32(zp + BZ_INIT_SIZE), INIT_SIZE);
	EXPECT_EQ(zp[BZ_TYPE_OF_LOADER], 0xff);
	EXPECT_EQ(r32(zp + BZ_CMD_LINE_PTR), BOOT_CMDLINE_GPA);
	EXPECT_EQ(r32(zp + ZP_EXT_CMD_LINE_PTR), 0);
	EXPECT_STREQ((const char *)g(self, BOOT_CMDLINE_GPA, 20), "console=ttyS0 quiet");
	EXPECT_EQ(r64(zp + ZP_ACPI_RSDP_ADDR), ACPI_GPA);
	EXPECT_TRUE(all_zero(zp, ZP_ACPI_RSDP_ADDR)); /* screen_info and the rest: zero */

	/* The initrds back to back, page-aligned at the top of RAM. */
	EXPECT_EQ(r32(zp + BZ_RAMDISK_IMAGE), rd_gpa);
	EXPECT_EQ(r32(zp + BZ_RAMDISK_SIZE), rd_len);
	EXPECT_EQ(r32(zp + ZP_EXT_RAMDISK_IMAGE), 0);
	rd = g(self, rd_gpa, rd_len);
	ASSERT_NOT_NULL(rd);
	EXPECT_EQ(rd[0], 5);
	EXPECT_EQ(rd[INITRD0_LEN - 1], (uint8_t)((INITRD0_LEN - 1) * 13 + 5));
	EXPECT_EQ(rd[INITRD0_LEN], 0x5a);
	EXPECT_EQ(rd[rd_len - 1], 0x5a);

	/* __BOOT_CS at 0x10 (64-bit code), __BOOT_DS at 0x18. */
	gdt = g(self, BOOT_GDT_GPA, BOOT_GDT_SIZE);
	EXPECT_EQ(r64(gdt + LINUX_BOOT_CS), 0x00af9b000000ffffULL);
	EXPECT_EQ(r64(gdt + LINUX_BOOT_DS), 0x00cf93000000ffffULL);
}

/* E820 entry i of the zero page. */
static void expect_e820(struct th_result *_r, const uint8_t *zp, unsigned int i, uint64_t addr,
			uint64_t size, uint32_t type)
{
	const uint8_t *e = zp + ZP_E820_TABLE + i * E820_ENTRY_SIZE;

	if (r64(e) != addr || r64(e + 8) != size || r32(e + 16) != type)
		TH_LOG("e820[%u]: 0x%llx 0x%llx %u, want 0x%llx 0x%llx %u", i,
		       (unsigned long long)r64(e), (unsigned long long)r64(e + 8), r32(e + 16),
		       (unsigned long long)addr, (unsigned long long)size, type);
	EXPECT_EQ(r64(e), addr);
	EXPECT_EQ(r64(e + 8), size);
	EXPECT_EQ(r32(e + 16), type);
}

TEST_F(lx, e820_follows_the_registry)
{
	const uint8_t *zp;

	ASSERT_EQ(load(self), 0);
	zp = zero_page(self);
	ASSERT_EQ(zp[ZP_E820_ENTRIES], 6);
	expect_e820(_r, zp, 0, 0, LOW_RAM_END, E820_RAM);
	/* The hole and the VGA text window in it: one reserved entry. */
	expect_e820(_r, zp, 1, LOW_RAM_END, ACPI_GPA - LOW_RAM_END, E820_RESERVED);
	expect_e820(_r, zp, 2, ACPI_GPA, ACPI_SIZE, E820_ACPI);
	expect_e820(_r, zp, 3, HIGH_RAM_START, RAM_SIZE - HIGH_RAM_START, E820_RAM);
	expect_e820(_r, zp, 4, VGA_LFB_GPA, VRAM_SIZE, E820_RESERVED);
	expect_e820(_r, zp, 5, BIOS_GPA, BIOS_SIZE, E820_RESERVED);
}

TEST(e820_with_ram_above_4g)
{
	struct pc_config cfg = {.ram_size = 5 * GiB, .vram_size = VRAM_SIZE, .nr_cpus = 1};
	struct e820_entry e[E820_MAX_ENTRIES];
	struct mem_registry reg;
	unsigned int n;

	mem__init(&reg);
	ASSERT_EQ(pc__setup_memory(&reg, &cfg, NULL), 0);
	n = e820__build(&reg, e, E820_MAX_ENTRIES);
	ASSERT_EQ(n, 7);
	EXPECT_EQ(e[3].addr, HIGH_RAM_START);
	EXPECT_EQ(e[3].size, LOW_RAM_LIMIT - HIGH_RAM_START);
	EXPECT_EQ(e[6].addr, HIGH_MEM_START);
	EXPECT_EQ(e[6].size, 5 * GiB - LOW_RAM_LIMIT);
	EXPECT_EQ(e[6].type, E820_RAM);
	/* A short table keeps the lowest entries. */
	EXPECT_EQ(e820__build(&reg, e, 2), 2);
	EXPECT_EQ(e[1].type, E820_RESERVED);
	mem__exit(&reg);
}

/* The real-mode reset vector writes the ACPI reset register (a kernel's "BIOS" reboot). */
TEST_F(lx, reset_vector_writes_the_reset_register)
{
	static const uint8_t stub[] = {0xba, 0x02, 0x06, 0xb0, 0x01, 0xee, 0xf4, 0xeb, 0xfd};

	ASSERT_EQ(memcmp(g(self, RESET_VECTOR_GPA, sizeof(stub)), stub, sizeof(stub)), 0);
	EXPECT_EQ(PORT_ACPI_RESET, 0x602);
	EXPECT_EQ(ACPI_RESET_VALUE, 1);
}

TEST_F(lx, default_cmdline_and_no_initrd)
{
	const uint8_t *zp;

	ASSERT_EQ(load(self), 0);
	zp = zero_page(self);
	EXPECT_STREQ((const char *)g(self, BOOT_CMDLINE_GPA, 32), LINUX_DEFAULT_CMDLINE);
	EXPECT_EQ(r32(zp + BZ_RAMDISK_IMAGE), 0);
	EXPECT_EQ(r32(zp + BZ_RAMDISK_SIZE), 0);
	EXPECT_EQ(self->boot.image_end, PREF_ADDR + INIT_SIZE);
}

TEST_F(lx, load_address_is_aligned_up)
{
	w64(self->img + BZ_PREF_ADDRESS, PREF_ADDR + 0x1000);
	ASSERT_EQ(load(self), 0);
	EXPECT_EQ(self->boot.entry, PREF_ADDR + 0x200000 + 0x200);
}

TEST_F(lx, initrd_stays_below_initrd_addr_max)
{
	const uint8_t *zp;

	w32(self->img + BZ_INITRD_ADDR_MAX, 32 * MiB - 1);
	self->args.initrds = self->initrds;
	self->args.nr_initrds = 1;
	ASSERT_EQ(load(self), 0);
	zp = zero_page(self);
	EXPECT_EQ(r32(zp + BZ_RAMDISK_IMAGE), ALIGN_DOWN(32 * MiB - INITRD0_LEN, PAGE_SIZE));
}

TEST_F(lx, rejects_wrong_magic)
{
	memcpy(self->img + BZ_HEADER, "HdrX", 4);
	expect_reject(self, _r, -ENOEXEC, ERR_PREFIX "not a Linux bzImage: no \"HdrS\" magic");
}

TEST_F(lx, rejects_old_protocol)
{
	w16(self->img + BZ_VERSION, 0x020a);
	expect_reject(self, _r, -ENOEXEC, ERR_PREFIX "boot protocol 2.10 is too old");
}

TEST_F(lx, rejects_not_relocatable)
{
	self->img[BZ_RELOCATABLE] = 0;
	expect_reject(self, _r, -ENOEXEC, ERR_PREFIX "not relocatable");
}

TEST_F(lx, rejects_no_64bit_entry)
{
	w16(self->img + BZ_XLOADFLAGS, 0x7e);
	expect_reject(self, _r, -ENOEXEC, ERR_PREFIX "no 64-bit entry point");
}

TEST_F(lx, rejects_truncated_file)
{
	self->len = SETUP_BYTES + KERNEL_SIZE - 1;
	expect_reject(self, _r, -ENOEXEC, ERR_PREFIX "truncated");
	self->len = 0x300; /* inside the setup code */
	expect_reject(self, _r, -ENOEXEC, ERR_PREFIX "truncated");
}

TEST_F(lx, rejects_header_past_eof)
{
	self->len = 0x240;
	expect_reject(self, _r, -ENOEXEC, "setup header ends at 0x26c");
}

TEST_F(lx, rejects_bad_alignment)
{
	w32(self->img + BZ_KERNEL_ALIGNMENT, 0x3000);
	expect_reject(self, _r, -ENOEXEC, "kernel_alignment 0x3000 is not a power of two");
}

TEST_F(lx, rejects_long_cmdline)
{
	w32(self->img + BZ_CMDLINE_SIZE, 10);
	self->args.append = "console=ttyS0";
	expect_reject(self, _r, -E2BIG, ERR_PREFIX "the command line is 13 bytes");
}

TEST_F(lx, rejects_kernel_past_ram)
{
	w32(self->img + BZ_INIT_SIZE, RAM_SIZE);
	expect_reject(self, _r, -ENOMEM, ERR_PREFIX "needs RAM [0x1000000, 0x5000000)");
}

TEST_F(lx, rejects_initrd_that_does_not_fit)
{
	int fd = open(self->rd0, O_WRONLY);

	/* 16 MiB kernel + 8 MiB init_size leaves 40 MiB; this initrd is bigger. */
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, 41 * MiB), 0);
	close(fd);
	self->args.initrds = self->initrds;
	self->args.nr_initrds = 1;
	expect_reject(self, _r, -ENOMEM, "does not fit in guest RAM");
	ASSERT_EQ(strncmp(self->err, "initrd ", 7), 0);
}

TEST_F(lx, rejects_missing_initrd)
{
	self->initrds[1] = "/nonexistent/initrd";
	self->args.initrds = self->initrds;
	self->args.nr_initrds = 2;
	expect_reject(self, _r, -ENOENT, "initrd /nonexistent/initrd");
}

/* Mutated headers: refused with a message or loaded, never out of bounds. */
TEST_F(lx, fuzz_header)
{
	static const uint16_t fields[] = {
	    BZ_SETUP_SECTS,	BZ_SYSSIZE,	     BZ_SYSSIZE + 2,	      BZ_JUMP + 1,
	    BZ_VERSION,		BZ_RELOCATABLE,	     BZ_XLOADFLAGS,	      BZ_CMDLINE_SIZE,
	    BZ_INITRD_ADDR_MAX, BZ_PREF_ADDRESS,     BZ_PREF_ADDRESS + 4,     BZ_INIT_SIZE,
	    BZ_INIT_SIZE + 2,	BZ_KERNEL_ALIGNMENT, BZ_KERNEL_ALIGNMENT + 2,
	};
	unsigned int i, j, seed = 12;
	uint8_t pristine[IMG_SIZE];

	memcpy(pristine, self->img, IMG_SIZE);
	self->args.initrds = self->initrds;
	self->args.nr_initrds = 1;
	for (i = 0; i < 3000; i++) {
		int ret;

		memcpy(self->img, pristine, IMG_SIZE);
		for (j = 0; j < 3; j++) {
			seed = seed * 1103515245 + 12345;
			self->img[fields[(seed >> 8) % ARRAY_SIZE(fields)]] = (uint8_t)(seed >> 16);
		}
		seed = seed * 1103515245 + 12345;
		self->len = (seed >> 8) % 8 ? IMG_SIZE : (seed >> 12) % IMG_SIZE;
		ret = load(self);
		if (ret)
			ASSERT_NE(self->err[0], '\0');
		ASSERT_STREQ(self->out, "");
	}
}

/*
 * Payloads unpacked on the host: a small vmlinux-like ELF64 (text linked at
 * 0xffffffff81000000 for 16 MiB physical, data with bss, entry given as a
 * physical address as vmlinux's phys_startup_64 is) packed here with each
 * codec's library and appended with kbuild's 4-byte size trailer.
 */
#define VML_TEXT     PREF_ADDR
#define VML_DATA     (PREF_ADDR + 0x200000)
#define VML_TEXT_LEN 0x3000
#define VML_DATA_LEN 0x1000
#define VML_BSS_LEN  0x2000
#define VML_ENTRY    (VML_TEXT + 0x40)
#define VML_LEN	     (0x1000 + VML_TEXT_LEN + VML_DATA_LEN)
#define PAYLOAD_OFF  0x100

static void build_vmlinux(uint8_t *elf)
{
	const struct phdr64 text = {PT_LOAD,  PF_R | PF_X,  0x1000,	 0xffffffff81000000ULL,
				    VML_TEXT, VML_TEXT_LEN, VML_TEXT_LEN};
	const struct phdr64 data = {
	    PT_LOAD,  PF_R | PF_W,  0x1000 + VML_TEXT_LEN,     0xffffffff81200000ULL,
	    VML_DATA, VML_DATA_LEN, VML_DATA_LEN + VML_BSS_LEN};
	size_t i;

	memset(elf, 0, VML_LEN);
	elf64_put_ehdr(elf, VML_ENTRY, 2);
	elf64_put_phdr(elf, 0, &text);
	elf64_put_phdr(elf, 1, &data);
	for (i = 0x1000; i < VML_LEN; i++)
		elf[i] = (uint8_t)(i / 64 + (i % 5));
}

/* Pack in with codec into out (at most cap bytes); the packed length, 0 on failure. */
static size_t pack(enum payload_codec codec, const uint8_t *in, size_t len, uint8_t *out,
		   size_t cap)
{
	lzma_options_lzma opt;
	lzma_stream ls = LZMA_STREAM_INIT;
	size_t n = 0;
	z_stream z;

	switch (codec) {
	case CODEC_XZ:
		return lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &n, cap) ==
			       LZMA_OK
			   ? n
			   : 0;
	case CODEC_LZMA:
		if (lzma_lzma_preset(&opt, 6) || lzma_alone_encoder(&ls, &opt) != LZMA_OK)
			return 0;
		ls.next_in = in;
		ls.avail_in = len;
		ls.next_out = out;
		ls.avail_out = cap;
		n = lzma_code(&ls, LZMA_FINISH) == LZMA_STREAM_END ? cap - ls.avail_out : 0;
		lzma_end(&ls);
		return n;
	case CODEC_GZIP:
		memset(&z, 0, sizeof(z));
		if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return 0;
		z.next_in = (Bytef *)in;
		z.avail_in = (uInt)len;
		z.next_out = out;
		z.avail_out = (uInt)cap;
		n = deflate(&z, Z_FINISH) == Z_STREAM_END ? cap - z.avail_out : 0;
		deflateEnd(&z);
		return n;
	case CODEC_ZSTD:
		n = ZSTD_compress(out, cap, in, len, 19);
		return ZSTD_isError(n) ? 0 : n;
	default:
		return 0;
	}
}

/*
 * Put a payload into the fixture's bzImage: the vmlinux packed with codec,
 * then a size trailer of trailer bytes. Returns the packed stream's length.
 */
static size_t put_elf_payload(struct _fixture_lx *self, enum payload_codec codec, uint32_t trailer,
			      const uint8_t *elf)
{
	uint8_t *p = self->img + SETUP_BYTES + PAYLOAD_OFF;
	size_t n;

	n = pack(codec, elf, VML_LEN, p, KERNEL_SIZE - PAYLOAD_OFF - 4);
	if (!n)
		return 0;
	w32(p + n, trailer);
	w32(self->img + BZ_PAYLOAD_OFFSET, PAYLOAD_OFF);
	w32(self->img + BZ_PAYLOAD_LENGTH, (uint32_t)n + 4);
	return n;
}

static size_t put_payload(struct _fixture_lx *self, enum payload_codec codec, uint32_t trailer)
{
	uint8_t elf[VML_LEN];

	build_vmlinux(elf);
	return put_elf_payload(self, codec, trailer, elf);
}

TEST_F(lx, unpacks_each_codec_on_the_host)
{
	static const enum payload_codec codecs[] = {CODEC_XZ, CODEC_LZMA, CODEC_GZIP, CODEC_ZSTD};
	uint8_t elf[VML_LEN];
	unsigned int i;

	build_vmlinux(elf);
	self->args.report = &self->rep;
	for (i = 0; i < ARRAY_SIZE(codecs); i++) {
		TH_LOG("codec %s", unpack__name(codecs[i]));
		ASSERT_NE(put_payload(self, codecs[i], VML_LEN), 0);
		memset(g(self, VML_TEXT, 4 * MiB), 0xee, 4 * MiB);
		ASSERT_EQ(load(self), 0);
		ASSERT_STREQ(self->out, "");
		EXPECT_STREQ(self->rep.codec, unpack__name(codecs[i]));
		EXPECT_TRUE(self->rep.unpacked);
		EXPECT_EQ(self->rep.unpacked_bytes, VML_LEN);
		/* Entered at startup_64's physical address, RSI at the zero page. */
		EXPECT_EQ(self->boot.mode, BOOT_LINUX64);
		EXPECT_EQ(self->boot.entry, VML_ENTRY);
		EXPECT_EQ(self->boot.rsi, LINUX_ZERO_PAGE_GPA);
		/* Each segment at its physical address, the bss zeroed, nothing past it. */
		EXPECT_EQ(memcmp(g(self, VML_TEXT, VML_TEXT_LEN), elf + 0x1000, VML_TEXT_LEN), 0);
		EXPECT_EQ(memcmp(g(self, VML_DATA, VML_DATA_LEN), elf + 0x1000 + VML_TEXT_LEN,
				 VML_DATA_LEN),
			  0);
		EXPECT_TRUE(all_zero(g(self, VML_DATA + VML_DATA_LEN, VML_BSS_LEN), VML_BSS_LEN));
		EXPECT_EQ(*g(self, VML_TEXT + VML_TEXT_LEN, 1), 0xee);
		/* The zero page still carries the file's setup header. */
		EXPECT_EQ(memcmp(zero_page(self) + BZ_HEADER, "HdrS", 4), 0);
	}
}

TEST_F(lx, decompress_guest_keeps_the_compressed_kernel)
{
	ASSERT_NE(put_payload(self, CODEC_XZ, VML_LEN), 0);
	self->args.report = &self->rep;
	self->args.unpack = UNPACK_GUEST;
	ASSERT_EQ(load(self), 0);
	EXPECT_FALSE(self->rep.unpacked);
	EXPECT_EQ(self->boot.entry, PREF_ADDR + LINUX_ENTRY64_OFF);
	EXPECT_EQ(memcmp(g(self, PREF_ADDR, KERNEL_SIZE), self->img + SETUP_BYTES, KERNEL_SIZE), 0);
}

TEST_F(lx, other_codecs_are_left_to_the_guest)
{
	static const char lz4[] = "\x02\x21\x4c\x18 not decoded here";
	memcpy(self->img + SETUP_BYTES + PAYLOAD_OFF, lz4, sizeof(lz4));
	w32(self->img + BZ_PAYLOAD_OFFSET, PAYLOAD_OFF);
	w32(self->img + BZ_PAYLOAD_LENGTH, sizeof(lz4));
	self->args.report = &self->rep;
	ASSERT_EQ(load(self), 0);
	EXPECT_STREQ(self->rep.codec, "lz4");
	EXPECT_FALSE(self->rep.unpacked);
	EXPECT_EQ(self->boot.entry, PREF_ADDR + LINUX_ENTRY64_OFF);
	/* A payload that the header places outside the kernel is not read either. */
	w32(self->img + BZ_PAYLOAD_OFFSET, KERNEL_SIZE - 4);
	ASSERT_EQ(load(self), 0);
	EXPECT_STREQ(self->rep.codec, "unknown");
	EXPECT_EQ(self->boot.entry, PREF_ADDR + LINUX_ENTRY64_OFF);
}

TEST(codec_magics)
{
	static const struct {
		const char *bytes, *name;
	} t[] = {
	    {"\x1f\x8b\x08", "gzip"},
	    {"BZh9", "bzip2"},
	    {"\x5d\x00\x00\x80", "lzma"},
	    {"\xfd"
	     "7zXZ\x00",
	     "xz"},
	    {"\x89LZO\x00", "lzo"},
	    {"\x02\x21\x4c\x18", "lz4"},
	    {"\x28\xb5\x2f\xfd", "zstd"},
	    {"\x7f"
	     "ELF",
	     "unknown"},
	};
	unsigned int i;
	char buf[8];

	for (i = 0; i < ARRAY_SIZE(t); i++) {
		memset(buf, 0, sizeof(buf));
		memcpy(buf, t[i].bytes, strlen(t[i].bytes) + 1);
		EXPECT_STREQ(unpack__name(unpack__detect(buf, sizeof(buf))), t[i].name);
	}
	EXPECT_EQ(unpack__detect("\x1f", 1), CODEC_UNKNOWN);
}

TEST_F(lx, rejects_corrupt_payload)
{
	size_t n = put_payload(self, CODEC_XZ, VML_LEN);

	ASSERT_GT(n, 64);
	self->img[SETUP_BYTES + PAYLOAD_OFF + n / 2] ^= 0x55;
	expect_reject(self, _r, -EBADMSG, ERR_PREFIX "xz payload: corrupt");
}

TEST_F(lx, rejects_truncated_payload)
{
	size_t n = put_payload(self, CODEC_GZIP, VML_LEN);

	ASSERT_GT(n, 64);
	/* Cut the stream short; the trailer moves with it. */
	w32(self->img + SETUP_BYTES + PAYLOAD_OFF + n / 2, VML_LEN);
	w32(self->img + BZ_PAYLOAD_LENGTH, (uint32_t)(n / 2 + 4));
	expect_reject(self, _r, -EBADMSG, ERR_PREFIX "gzip payload: truncated");
}

TEST_F(lx, rejects_payload_longer_than_its_trailer)
{
	ASSERT_NE(put_payload(self, CODEC_ZSTD, VML_LEN / 2), 0);
	expect_reject(self, _r, -EFBIG, ERR_PREFIX "zstd payload: unpacks to more than");
}

TEST_F(lx, rejects_payload_shorter_than_its_trailer)
{
	ASSERT_NE(put_payload(self, CODEC_XZ, VML_LEN + 1), 0);
	expect_reject(self, _r, -ENOEXEC,
		      ERR_PREFIX "the xz payload unpacks to 20480 bytes, its trailer says 20481");
}

TEST_F(lx, rejects_absurd_trailer)
{
	ASSERT_NE(put_payload(self, CODEC_XZ, 0xffffffffu), 0);
	expect_reject(self, _r, -ENOEXEC,
		      ERR_PREFIX "its xz payload says it unpacks to 4294967295");
}

TEST_F(lx, rejects_unpacked_segments_outside_ram)
{
	uint8_t elf[VML_LEN];

	build_vmlinux(elf);
	w64(elf + EHDR64_SIZE + 24, 0x1000); /* text's p_paddr: the boot structures */
	ASSERT_NE(put_elf_payload(self, CODEC_XZ, VML_LEN, elf), 0);
	expect_reject(self, _r, -ENOEXEC,
		      ERR_PREFIX "program header 0: segment at 0x1000 is below");
	build_vmlinux(elf);
	w64(elf + EHDR64_SIZE + PHDR64_SIZE + 24, RAM_SIZE - 0x1000); /* data: past the end */
	ASSERT_NE(put_elf_payload(self, CODEC_XZ, VML_LEN, elf), 0);
	expect_reject(self, _r, -ENOEXEC, ERR_PREFIX "program header 1: segment at");
}

TEST_F(lx, fuzz_payload)
{
	uint8_t pristine[IMG_SIZE];
	unsigned int i, j, seed = 7;
	size_t n = put_payload(self, CODEC_XZ, VML_LEN);

	ASSERT_GT(n, 64);
	memcpy(pristine, self->img, IMG_SIZE);
	for (i = 0; i < 2000; i++) {
		int ret;

		memcpy(self->img, pristine, IMG_SIZE);
		for (j = 0; j < 1 + i % 4; j++) {
			seed = seed * 1103515245 + 12345;
			self->img[SETUP_BYTES + PAYLOAD_OFF + (seed >> 8) % (n + 4)] =
			    (uint8_t)(seed >> 16);
		}
		ret = load(self);
		if (ret)
			ASSERT_NE(self->err[0], '\0');
		ASSERT_STREQ(self->out, "");
	}
}

TEST_HARNESS_MAIN
