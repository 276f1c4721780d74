// SPDX-License-Identifier: GPL-2.0
/*
 * `kvmsnap restore` refuses every image it must not run, eager and lazy:
 * exit status 2, nothing on stdout, exactly one stderr line
 * "kvmsnap: error: ..." naming the cause, no sanitizer report (run the
 * tests on a SANITIZE=address,undefined build to make that count), and no
 * VM: the control socket never appears. The images: empty, interrupted
 * (state patched, and a snapshot killed with SIGKILL midway), truncated, a
 * flipped byte in the header, the section table, the VM start section, a
 * page header, the VM state area, the footer and the page data, a wrong
 * magic, a future format version; then a missing file and a directory.
 */
#include <xxhash.h>

#include "../lib/vmproc.h"

#include "lib/le.h"

/* Header fields (Documentation/snapshot-format.md). */
#define H_VERSION    0x008
#define H_STATE	     0x020
#define H_GENERATION 0x028
#define H_START_OFF  0x050
#define H_STATE_OFF  0x060
#define H_FOOTER_OFF 0x070
#define H_SECTIONS   0x100 /* 64-byte entries */
#define SEC_OFFSET   0x08
#define SEC_TABLE    0x18
#define SEC_DATA     0x20
#define SEC_PAGES    0x28
#define CSUM_OFF     0xff8

FIXTURE(bad)
{
	char dir[128];
	pid_t vm;
	char out[OUT_MAX], err[OUT_MAX];
};

/* Start kvmsnap with args; stdout and stderr in DIR/out and DIR/err. */
static pid_t spawn(struct _fixture_bad *self, const char *const *args)
{
	char po[200], pe[200];

	snprintf(po, sizeof(po), "%s/out", self->dir);
	snprintf(pe, sizeof(pe), "%s/err", self->dir);
	return spawn_io(args, "/dev/null", po, pe, false);
}

/* Run kvmsnap to its end; stdout and stderr in self->out and self->err. */
static int cli(struct _fixture_bad *self, const char *const *args)
{
	char p[200];
	pid_t pid = spawn(self, args);
	int st = pid > 0 ? wait_or_kill(pid, cli_timeout_ms) : -1;

	snprintf(p, sizeof(p), "%s/out", self->dir);
	read_file(p, self->out, sizeof(self->out));
	snprintf(p, sizeof(p), "%s/err", self->dir);
	read_file(p, self->err, sizeof(self->err));
	return st;
}

#define CLI(...) cli(self, (const char *const[]){__VA_ARGS__, NULL})

static char *path_in(struct _fixture_bad *self, char *buf, const char *name)
{
	snprintf(buf, 200, "%s/%s", self->dir, name);
	return buf;
}

FIXTURE_SETUP(bad)
{
	const char *tmp = getenv("TMPDIR");

	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	snprintf(self->dir, sizeof(self->dir), "%s/kvmsnap-rbad-XXXXXX", tmp ? tmp : "/tmp");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
}

FIXTURE_TEARDOWN(bad)
{
	if (self->vm > 0) {
		kill(self->vm, SIGKILL);
		waitpid(self->vm, NULL, 0);
	}
	rm_tree(self->dir);
}

/* ---- images ---- */

static int ctl_ok(const char *sock)
{
	int fd = ctl_open(sock);

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* Start the dirtier on a VM of mem bytes; its control socket is DIR/vm.sock. */
static void start_vm(struct th_result *_r, struct _fixture_bad *self, const char *mem,
		     const char *guest)
{
	char sock[200], pe[200];
	uint64_t deadline = ms_now() + 15000;
	const char *args[] = {"run", "--guest",	  guest, "--mem",    mem,    "--vram",
			      "64K", "--control", sock,	 "--serial", "none", NULL};

	path_in(self, sock, "vm.sock");
	path_in(self, pe, "vm.err");
	self->vm = spawn_io(args, NULL, NULL, pe, false);
	while (!ctl_ok(sock) && ms_now() < deadline)
		sleep_ms(10);
	ASSERT_TRUE(ctl_ok(sock));
	sleep_ms(200); /* the dirtier is under way */
}

static void stop_vm(struct _fixture_bad *self)
{
	char sock[200];

	path_in(self, sock, "vm.sock");
	CLI("ctl", sock, "quit");
	if (wait_or_kill(self->vm, 15000) != -1)
		self->vm = 0;
}

/* A complete image of a small running dirtier. */
static void good_image(struct th_result *_r, struct _fixture_bad *self, char *img)
{
	char sock[200];

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened read-write: no KVM here");
	path_in(self, img, "img");
	path_in(self, sock, "vm.sock");
	start_vm(_r, self, "16M", "dirtier:ws=1M");
	ASSERT_EQ(CLI("snapshot", img, "--control", sock), 0);
	stop_vm(self);
	ASSERT_EQ(CLI("image", "verify", "--deep", img), 0);
}

static int pread_at(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, buf, len, (off_t)off) : -1;

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int pwrite_at(const char *path, const void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pwrite(fd, buf, len, (off_t)off) : -1;

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static uint64_t u64_at(const char *path, uint64_t off)
{
	uint8_t b[8] = {0};

	pread_at(path, b, 8, off);
	return get_le64(b);
}

static int flip(const char *path, uint64_t off)
{
	uint8_t b;

	if (pread_at(path, &b, 1, off))
		return -1;
	b ^= 0x5a;
	return pwrite_at(path, &b, 1, off);
}

static int put32(const char *path, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	return pwrite_at(path, b, 4, off);
}

/* Recompute the header's XXH3 after a patch, so that the patch itself is what is seen. */
static int fix_header_checksum(const char *path)
{
	uint8_t h[4096];

	if (pread_at(path, h, sizeof(h), 0))
		return -1;
	put_le64(h + CSUM_OFF, XXH3_64bits(h, CSUM_OFF));
	return pwrite_at(path, h, sizeof(h), 0);
}

/* ---- the verdict ---- */

/* One refused run: status 2, one error line with want in it, no VM. */
static void expect_refused_as(struct th_result *_r, struct _fixture_bad *self, const char *img,
			      const char *want, bool lazy)
{
	char sock[200];
	int st;

	path_in(self, sock, "restored.sock");
	if (lazy)
		st = CLI("restore", img, "--lazy", "--control", sock, "--serial", "none");
	else
		st = CLI("restore", img, "--control", sock, "--serial", "none");
	TH_LOG("%s: %s", lazy ? "lazy" : "eager", self->err);
	EXPECT_EQ(st, 2);
	EXPECT_STREQ(self->out, "");
	EXPECT_EQ(count_lines(self->err), 1);
	EXPECT_EQ(strncmp(self->err, "kvmsnap: error: ", 16), 0);
	EXPECT_NOT_NULL(strstr(self->err, want));
	EXPECT_NULL(strstr(self->err, "Sanitizer"));
	EXPECT_NULL(strstr(self->err, "runtime error"));
	EXPECT_NE(access(sock, F_OK), 0);
}

static void expect_refused(struct th_result *_r, struct _fixture_bad *self, const char *img,
			   const char *want)
{
	expect_refused_as(_r, self, img, want, false);
	expect_refused_as(_r, self, img, want, true);
}

/* ---- the cases ---- */

TEST_F(bad, empty_image)
{
	char img[200];

	path_in(self, img, "img");
	ASSERT_EQ(CLI("image", "create", img, "--mem", "16M", "--vram", "64K"), 0);
	expect_refused(_r, self, img, "state is 'empty': no snapshot has been written to it");
}

TEST_F(bad, interrupted_state)
{
	char img[200];

	good_image(_r, self, img);
	ASSERT_EQ(put32(img, H_STATE, 1), 0);
	ASSERT_EQ(fix_header_checksum(img), 0);
	expect_refused(_r, self, img,
		       "state is 'writing': the snapshot of generation 1 was interrupted");
}

/* A real interruption: `kvmsnap snapshot` killed with SIGKILL during its first pass. */
TEST_F_TIMEOUT(bad, snapshot_killed_midway, 120)
{
	char img[200], sock[200];
	uint8_t b[4] = {0};
	uint64_t deadline;
	pid_t snap;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened read-write: no KVM here");
	path_in(self, img, "img");
	path_in(self, sock, "vm.sock");
	start_vm(_r, self, "1G", "dirtier:ws=512M");
	snap = spawn(self, (const char *const[]){"snapshot", img, "--control", sock, NULL});
	ASSERT_GT(snap, 0);
	/* The header says 'writing' before the first page is written. */
	deadline = ms_now() + 30000;
	while (ms_now() < deadline && (pread_at(img, b, 4, H_STATE) || get_le32(b) != 1))
		usleep(500);
	kill(snap, SIGKILL);
	EXPECT_EQ(wait_or_kill(snap, 10000), -2);
	ASSERT_EQ(get_le32(b), 1);
	/* The VM notices its manager is gone and runs on. */
	EXPECT_TRUE(ctl_ok(sock));
	stop_vm(self);
	expect_refused(_r, self, img,
		       "state is 'writing': the snapshot of generation 1 was interrupted");
}

TEST_F(bad, truncated)
{
	char img[200];
	struct stat st;

	good_image(_r, self, img);
	ASSERT_EQ(stat(img, &st), 0);
	ASSERT_EQ(truncate(img, st.st_size / 2), 0);
	expect_refused(_r, self, img, "file (truncated?) is smaller than");
}

TEST_F(bad, header_byte_flipped)
{
	char img[200];

	good_image(_r, self, img);
	ASSERT_EQ(flip(img, H_GENERATION), 0);
	expect_refused(_r, self, img, "header checksum mismatch (corrupted header)");
}

TEST_F(bad, section_table_byte_flipped)
{
	char img[200];

	good_image(_r, self, img);
	/* As it lies: the header checksum covers the table. */
	ASSERT_EQ(flip(img, H_SECTIONS + SEC_DATA + 2), 0);
	expect_refused(_r, self, img, "header checksum mismatch");
	/* With the checksum made to fit, the table itself is found wrong. */
	ASSERT_EQ(fix_header_checksum(img), 0);
	expect_refused(_r, self, img, "section");
}

TEST_F(bad, start_section_byte_flipped)
{
	char img[200];

	good_image(_r, self, img);
	ASSERT_EQ(flip(img, u64_at(img, H_START_OFF) + 0x38), 0);
	expect_refused(_r, self, img, "VM start section checksum mismatch");
}

TEST_F(bad, page_header_byte_flipped)
{
	char img[200];

	good_image(_r, self, img);
	/* Page 3 of the first section: its offset bits. */
	ASSERT_EQ(flip(img, u64_at(img, H_SECTIONS + SEC_TABLE) + 3 * 8 + 1), 0);
	expect_refused(_r, self, img, "page header 3 is");
}

TEST_F(bad, page_table_padding_byte_flipped)
{
	char img[200];
	uint64_t table = 0, pages = 0;
	uint8_t b[8];

	good_image(_r, self, img);
	table = u64_at(img, H_SECTIONS + SEC_TABLE);
	ASSERT_EQ(pread_at(img, b, 8, H_SECTIONS + SEC_PAGES), 0);
	pages = get_le64(b);
	/*
	 * After the page headers, the page digests (8 per page) and the block
	 * digests (8 per 512 pages); then padding up to the data.
	 */
	table += pages * 16 + (pages + 511) / 512 * 8;
	ASSERT_LT(table + 100, u64_at(img, H_SECTIONS + SEC_DATA));
	ASSERT_EQ(flip(img, table + 100), 0);
	expect_refused(_r, self, img, "section 1 (pc.ram): padding after the digest tables is set");
}

TEST_F(bad, state_area_byte_flipped)
{
	char img[200];

	good_image(_r, self, img);
	ASSERT_EQ(flip(img, u64_at(img, H_STATE_OFF) + 0x100), 0);
	expect_refused(_r, self, img, "img: VM state area: checksum mismatch (stored ");
}

TEST_F(bad, footer_byte_flipped)
{
	char img[200];

	good_image(_r, self, img);
	ASSERT_EQ(flip(img, u64_at(img, H_FOOTER_OFF) + 0x40), 0);
	expect_refused(_r, self, img, "footer checksum mismatch");
}

/*
 * Page data: only an eager restore reads it all, and its digest check
 * refuses it. A lazy one maps it unread (`ctl digest` then shows it).
 */
TEST_F(bad, page_data_byte_flipped)
{
	char img[200];

	good_image(_r, self, img);
	ASSERT_EQ(flip(img, u64_at(img, H_SECTIONS + SEC_DATA) + 5 * 4096 + 100), 0);
	expect_refused_as(_r, self, img, "region pc.ram: the memory read back has digest", false);
}

TEST_F(bad, wrong_magic)
{
	char img[200];

	good_image(_r, self, img);
	ASSERT_EQ(pwrite_at(img, "KVMSNAPX", 8, 0), 0);
	expect_refused(_r, self, img, "not a kvmsnap image (bad magic)");
}

TEST_F(bad, future_version)
{
	char img[200];

	good_image(_r, self, img);
	ASSERT_EQ(put32(img, H_VERSION, 3), 0);
	ASSERT_EQ(fix_header_checksum(img), 0);
	expect_refused(_r, self, img, "format version 3 is newer than this kvmsnap supports (2)");
}

TEST_F(bad, missing_file)
{
	char img[200];

	path_in(self, img, "no-such-image");
	expect_refused(_r, self, img, "cannot open: No such file or directory");
}

TEST_F(bad, directory)
{
	expect_refused(_r, self, self->dir, "not a regular file or a block device");
}

/* `image screen` wants a complete image too. */
TEST_F(bad, screen_of_empty_image)
{
	char img[200];

	path_in(self, img, "img");
	ASSERT_EQ(CLI("image", "create", img, "--mem", "16M", "--vram", "64K"), 0);
	EXPECT_EQ(CLI("image", "screen", img), 1);
	EXPECT_EQ(count_lines(self->err), 1);
	EXPECT_NOT_NULL(strstr(self->err, "state is 'empty': it holds no snapshot"));
	EXPECT_STREQ(self->out, "");
}

TEST_F(bad, usage)
{
	static const struct {
		const char *args[5];
		const char *want;
	} cases[] = {
	    {{"restore", NULL}, "no IMAGE given"},
	    {{"restore", "a", "b", NULL}, "unexpected argument 'b'"},
	    {{"restore", "a", "--bogus", NULL}, "unknown option '--bogus'"},
	    {{"restore", "a", "--control", NULL}, "option --control needs a value"},
	    {{"restore", "a", "--paused", NULL}, "--paused needs --control"},
	    {{"restore", "a", "--clock", "later"}, "--clock later: must be catch-up or continue"},
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		EXPECT_EQ(cli(self, cases[i].args), 2);
		EXPECT_EQ(count_lines(self->err), 1);
		EXPECT_NOT_NULL(strstr(self->err, cases[i].want));
	}
	EXPECT_EQ(CLI("restore", "--help"), 0);
	EXPECT_NOT_NULL(strstr(self->out, "usage: kvmsnap restore IMAGE"));
	EXPECT_NOT_NULL(strstr(self->out, "--clock MODE"));
}

TEST_HARNESS_MAIN
