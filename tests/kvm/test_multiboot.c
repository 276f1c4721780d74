// SPDX-License-Identifier: GPL-2.0
/*
 * Multiboot kernels run by the real binary: mbhello (tests/guests/mbhello,
 * written like any third-party Multiboot kernel) must see the boot magic,
 * its command line, the memory sizes, the memory map and a module; a
 * malformed --kernel must end kvmsnap with exactly one error line.
 */
#include "../lib/vmproc.h"

#define RUN_TIMEOUT_MS 45000 /* a kvmsnap run may take */
#define MBHELLO_OK     33    /* isa-debug-exit code 0x10: (0x10 << 1) | 1 */
#define MODULE_TEXT    "a Multiboot module\n"

FIXTURE(mb)
{
	char dir[64];
	char kernel[4096];
	char module[128];
	char bad[128];
	struct run run;
};

FIXTURE_SETUP(mb)
{
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	ASSERT_TRUE(test_kernel("mbhello", self->kernel, sizeof(self->kernel)));
	strcpy(self->dir, "/tmp/kvmsnap-mb-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->module, sizeof(self->module), "%s/module", self->dir);
	snprintf(self->bad, sizeof(self->bad), "%s/bad-kernel", self->dir);
	ASSERT_EQ(write_file(self->module, MODULE_TEXT, strlen(MODULE_TEXT)), 0);
}

FIXTURE_TEARDOWN(mb)
{
	if (!self->dir[0])
		return;
	unlink(self->module);
	unlink(self->bad);
	rmdir(self->dir);
}

static void expect_line(struct th_result *_r, const char *out, const char *line)
{
	char want[4096 + 2];

	snprintf(want, sizeof(want), "%s\n", line);
	if (!strstr(out, want))
		TH_LOG("missing line \"%s\"", line);
	EXPECT_NOT_NULL(strstr(out, want));
}

TEST_F(mb, mbhello_boots)
{
	const char *args[] = {"--kernel",   self->kernel, "--append", "hello world", "--initrd",
			      self->module, "--mem",	  "64M",      NULL};
	char line[4096 + 64];

	ASSERT_EQ(run_guest(&self->run, self->dir, args, RUN_TIMEOUT_MS), 0);
	if (self->run.status != MBHELLO_OK)
		TH_LOG("exit status %d\nstderr:\n%sserial:\n%s", self->run.status, self->run.err,
		       self->run.serial);
	ASSERT_EQ(self->run.status, MBHELLO_OK);

	expect_line(_r, self->run.serial, "mbhello: booted");
	expect_line(_r, self->run.serial, "loader: kvmsnap");
	snprintf(line, sizeof(line), "cmdline: %s hello world", self->kernel);
	expect_line(_r, self->run.serial, line);
	expect_line(_r, self->run.serial, "mem_lower: 640 KiB");
	expect_line(_r, self->run.serial, "mem_upper: 64512 KiB");
	/* The memory map: RAM below 640K and from 1M, ACPI reclaimable, the BIOS reserved. */
	expect_line(_r, self->run.serial, "mmap: 0x0 0xa0000 1");
	expect_line(_r, self->run.serial, "mmap: 0xe0000 0x20000 3");
	expect_line(_r, self->run.serial, "mmap: 0x100000 0x3f00000 1");
	expect_line(_r, self->run.serial, "mmap: 0xfffc0000 0x40000 2");
	expect_line(_r, self->run.serial, "modules: 1");
	snprintf(line, sizeof(line), "module: %s %zu bytes", self->module, strlen(MODULE_TEXT));
	expect_line(_r, self->run.serial, line);
}

TEST_F(mb, mbhello_without_append_or_modules)
{
	const char *args[] = {"--kernel", self->kernel, "--mem", "32M", NULL};
	char line[4096 + 64];

	ASSERT_EQ(run_guest(&self->run, self->dir, args, RUN_TIMEOUT_MS), 0);
	if (self->run.status != MBHELLO_OK)
		TH_LOG("exit status %d\nstderr:\n%sserial:\n%s", self->run.status, self->run.err,
		       self->run.serial);
	ASSERT_EQ(self->run.status, MBHELLO_OK);
	snprintf(line, sizeof(line), "cmdline: %s", self->kernel);
	expect_line(_r, self->run.serial, line);
	expect_line(_r, self->run.serial, "mem_upper: 31744 KiB");
	expect_line(_r, self->run.serial, "modules: 0");
}

/* A bad kernel ends kvmsnap with a failure status and one error line. */
static void expect_one_error(struct _fixture_mb *self, struct th_result *_r, const char *why)
{
	const char *args[] = {"--kernel", self->bad, "--mem", "64M", NULL};

	ASSERT_EQ(run_guest(&self->run, self->dir, args, RUN_TIMEOUT_MS), 0);
	if (count_lines(self->run.err) != 1 || !strstr(self->run.err, why))
		TH_LOG("exit status %d, stderr:\n%s", self->run.status, self->run.err);
	EXPECT_GT(self->run.status, 0);
	EXPECT_EQ(count_lines(self->run.err), 1);
	EXPECT_EQ(strncmp(self->run.err, "kvmsnap: error:", 15), 0);
	EXPECT_NOT_NULL(strstr(self->run.err, why));
	EXPECT_STREQ(self->run.serial, "");
}

TEST_F(mb, rejects_garbage_kernel)
{
	static const char text[] = "this is not a kernel\n";

	ASSERT_EQ(write_file(self->bad, text, strlen(text)), 0);
	expect_one_error(self, _r, "no Multiboot header in its first 8 KiB");
}

TEST_F(mb, rejects_truncated_multiboot_kernel)
{
	/* The first 200 bytes of mbhello: an ELF32 whose Multiboot header is cut off. */
	char buf[200];
	FILE *f = fopen(self->kernel, "r");

	ASSERT_NOT_NULL(f);
	ASSERT_EQ(fread(buf, 1, sizeof(buf), f), sizeof(buf));
	fclose(f);
	ASSERT_EQ(write_file(self->bad, buf, sizeof(buf)), 0);
	expect_one_error(self, _r, "32-bit ELF without a Multiboot header");
}

TEST_F(mb, rejects_empty_kernel)
{
	ASSERT_EQ(write_file(self->bad, "", 0), 0);
	expect_one_error(self, _r, "file is empty");
}

TEST_F(mb, rejects_missing_kernel)
{
	expect_one_error(self, _r, "No such file or directory");
}

TEST_HARNESS_MAIN
