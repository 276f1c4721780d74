// SPDX-License-Identifier: GPL-2.0
/*
 * Images on regular files (snapshot/image.c, target.c, io.c, verify.c) and
 * the `kvmsnap image` commands, in a temporary directory.
 */
#include "../harness.h"
#include "../lib/snapimg.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "snapshot/image.h"
#include "lib/le.h"
#include "snapshot/state.h"
#include "vmm/pc.h"
#include "vmm/snapcfg.h"

#define MiB_ (1ULL << 20)

FIXTURE(img)
{
	char dir[256];
	char path[300];
	char mnt[300]; /* a tmpfs mounted by a test */
	struct snap_config cfg;
	struct snap_layout layout;
	uint8_t *mem[SNAP_MAX_REGIONS]; /* the fake VM's memory, for a complete image */
};

FIXTURE_SETUP(img)
{
	struct error err;

	ASSERT_NOT_NULL(snapimg_mkdtemp(self->dir, sizeof(self->dir), "kvmsnap-img"));
	snprintf(self->path, sizeof(self->path), "%s/a.img", self->dir);
	ASSERT_EQ(snapimg_small_pc(&self->cfg, 1), 0);
	ASSERT_EQ(snap_layout_compute(&self->cfg, SNAP_ORDER_REGISTRY, &self->layout, &err), 0);
}

FIXTURE_TEARDOWN(img)
{
	unsigned int i;

	for (i = 0; i < SNAP_MAX_REGIONS; i++)
		free(self->mem[i]);
	if (self->mnt[0])
		umount(self->mnt);
	rm_tree(self->dir);
}

static int create(const char *path, const struct snap_config *cfg, uint32_t order, bool force,
		  struct error *err)
{
	struct snap_target_opts o = {.order = order, .force = force};

	return snapimg_create(path, cfg, &o, err);
}

static void flip(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	if (pread(fd, &b, 1, (off_t)off) == 1) {
		b ^= mask;
		if (pwrite(fd, &b, 1, (off_t)off) != 1)
			abort();
	}
	close(fd);
}

#define WRITE_ID 0x5eed5eed5eed5eedULL

/*
 * Make the image hold a complete snapshot of generation 1 by hand, as the
 * writer would: page data at the slots, every page header present, the page
 * and block digest tables, a state area, a footer with the region digests
 * and the write id, then the header.
 */
static int make_complete(struct _fixture_img *self, struct error *err)
{
	struct snap_image img;
	struct snap_footer f = {0};
	struct snap_state_writer w;
	uint8_t *state, *area, *rec;
	size_t used;
	unsigned int r, k;
	uint64_t i;
	int ret;

	ret = snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &img, err);
	if (ret)
		return ret;
	f.generation = 1;
	f.write_id = WRITE_ID;
	f.nr_regions = img.cfg.nr_regions;
	f.digest_algo = SNAP_DIGEST_XXH3_TREE;
	f.passes = 2;
	f.flags = SNAP_FOOTER_CONVERGED;
	f.pause_ns = 1700000000000000000ULL;
	f.downtime_us = 1500;
	for (r = 0; r < img.cfg.nr_regions; r++) {
		uint64_t size = img.cfg.regions[r].size;

		self->mem[r] = malloc(size);
		for (i = 0; i < size; i++)
			self->mem[r][i] = (uint8_t)(i * 31 + (i >> 12) * 7 + r);
		f.digest[r] = snap_digest_pages(self->mem[r], size / 4096, NULL);
		f.region_size[r] = size;
		f.bytes_written += size;
	}
	for (k = 0; k < img.layout.nr_sections && !ret; k++) {
		const struct snap_section *s = &img.layout.sections[k];

		uint64_t *hashes = calloc(s->pages, 8), b;

		area = calloc(1, s->data_off - s->offset);
		snap_section_desc_encode(s, &img.cfg.regions[s->region], area);
		snap_digest_pages(self->mem[s->region], s->pages, hashes);
		for (i = 0; i < s->pages; i++) {
			put_le64(area + 64 + 8 * i, snap_page_hdr(i, SNAP_PAGE_PRESENT));
			put_le64(area + (s->hash_off - s->offset) + 8 * i, hashes[i]);
		}
		/* A block digest per 512 page hashes, the last block shorter. */
		for (b = 0; b * 512 < s->pages; b++)
			put_le64(area + (s->blocks_off - s->offset) + 8 * b,
				 snap_digest_u64s(hashes + b * 512, MIN(512, s->pages - b * 512)));
		free(hashes);
		ret = snap_image_pwrite(&img, area, s->data_off - s->offset, s->offset, err);
		if (!ret)
			ret = snap_image_pwrite(&img, self->mem[s->region], s->pages * 4096,
						s->data_off, err);
		free(area);
	}
	state = calloc(1, img.layout.state_size);
	snap_state_init(&w, state, img.layout.state_size);
	rec = snap_state_add(&w, 1, 0, 100);
	if (rec)
		memset(rec, 0xab, 100);
	snap_state_add(&w, 2, 0, 13);
	if (!ret)
		ret = snap_state_finish(&w, &used, err);
	if (!ret)
		ret = snap_image_pwrite(&img, state, used, img.layout.state_off, err);
	free(state);
	if (!ret) {
		uint8_t buf[4096];

		snap_footer_encode(&f, buf);
		ret = snap_image_pwrite(&img, buf, 4096, img.layout.footer_off, err);
	}
	img.hdr.state = SNAP_STATE_COMPLETE;
	img.hdr.flags = 0; /* as a writer clears it */
	img.hdr.generation = 1;
	img.hdr.write_id = WRITE_ID;
	img.hdr.started_ns = 1700000000000000000ULL - 1000000;
	img.hdr.completed_ns = 1700000000000000000ULL + 1000000;
	img.hdr.state_used = used;
	if (!ret)
		ret = snap_image_write_header(&img, true, err);
	snap_image_close(&img);
	return ret;
}

static int open_verify(const char *path, bool deep, struct snap_verify_result *res,
		       struct error *err)
{
	struct snap_image img;
	int ret = snap_image_open(path, SNAP_OPEN_RDONLY, NULL, &img, err);

	if (ret)
		return ret;
	ret = snap_image_verify(&img, deep, res, err);
	snap_image_close(&img);
	return ret;
}

TEST_F(img, create_preallocates_exactly)
{
	struct error err;
	struct stat st;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	ASSERT_EQ(stat(self->path, &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, self->layout.image_size);
	/* Every block allocated now: no snapshot write can hit ENOSPC later. */
	EXPECT_GE((uint64_t)st.st_blocks * 512, self->layout.image_size);
}

TEST_F(img, open_reads_back_what_create_wrote)
{
	struct snap_image img;
	struct error err;
	static const uint8_t zero[16];

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_SIZE, false, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_EQ(memcmp(&img.cfg, &self->cfg, sizeof(img.cfg)), 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_EMPTY);
	EXPECT_EQ(img.hdr.generation, 0);
	EXPECT_EQ(img.hdr.order, SNAP_ORDER_SIZE);
	EXPECT_EQ(img.layout.order, SNAP_ORDER_SIZE);
	EXPECT_EQ(img.hdr.image_size, self->layout.image_size);
	EXPECT_EQ(img.target_size, self->layout.image_size);
	EXPECT_FALSE(img.blockdev);
	EXPECT_NE(memcmp(img.hdr.uuid, zero, 16), 0);
	EXPECT_EQ(img.hdr.uuid[6] >> 4, 4);
	EXPECT_GT(img.hdr.created_ns, 1600000000ULL * 1000000000ULL);
	EXPECT_STREQ(img.hdr.metadata,
		     "machine=kvmsnap-pc-1\nmem=2M\nvcpus=1\nvram=64K\nkvmsnap=0.1.0\n");
	snap_image_close(&img);
}

TEST_F(img, caller_metadata_is_kept)
{
	struct snap_target_opts o = {0};
	struct snap_image img = {0};
	struct error err;

	snprintf(img.hdr.metadata, sizeof(img.hdr.metadata), "machine=x\nguest=hello\n");
	ASSERT_EQ(snap_image_create(self->path, &self->cfg, &o, &img, &err), 0);
	snap_image_close(&img);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_STREQ(img.hdr.metadata, "machine=x\nguest=hello\n");
	snap_image_close(&img);
}

TEST_F(img, create_over_an_existing_file_needs_force)
{
	struct error err;
	struct snap_config two;
	struct snap_image img;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	EXPECT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), -EEXIST);
	EXPECT_NOT_NULL(strstr(err.msg, "already exists; use --force"));
	/* Refused without touching it. */
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	snap_image_close(&img);
	ASSERT_EQ(snapimg_small_pc(&two, 2), 0);
	ASSERT_EQ(create(self->path, &two, SNAP_ORDER_REGISTRY, true, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_EQ(img.cfg.vcpus, 2);
	snap_image_close(&img);
}

TEST_F(img, prepare)
{
	struct snap_target_opts o = {0};
	struct snap_image img = {0};
	struct snap_config two;
	struct error err;

	/* Missing: created. */
	ASSERT_EQ(snap_image_prepare(self->path, &self->cfg, &o, &img, &err), 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_EMPTY);
	snap_image_close(&img);
	/* Same configuration: opened read-write. */
	ASSERT_EQ(snap_image_prepare(self->path, &self->cfg, &o, &img, &err), 0);
	EXPECT_EQ(img.hdr.image_size, self->layout.image_size);
	snap_image_close(&img);
	/* Another VM: refused, naming the difference. */
	ASSERT_EQ(snapimg_small_pc(&two, 2), 0);
	EXPECT_EQ(snap_image_prepare(self->path, &two, &o, &img, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, self->path));
	EXPECT_NOT_NULL(strstr(err.msg, "vcpus: the image has 1, the VM 2"));
	EXPECT_EQ(img.fd, -1);
}

TEST_F(img, truncated_target_is_refused)
{
	struct snap_image img;
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	ASSERT_EQ(truncate(self->path, (off_t)self->layout.image_size - 4096), 0);
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "is smaller than the"));
	EXPECT_NOT_NULL(strstr(err.msg, "(truncated?)"));
	ASSERT_EQ(truncate(self->path, 100), 0);
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "too small to be a kvmsnap image"));
}

TEST_F(img, foreign_files_are_refused)
{
	struct snap_image img;
	struct error err;
	char buf[16384];
	int fd;

	memset(buf, 'x', sizeof(buf));
	fd = open(self->path, O_CREAT | O_WRONLY, 0644);
	ASSERT_EQ(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "not a kvmsnap image (bad magic)"));
	EXPECT_EQ(snap_image_open(self->dir, SNAP_OPEN_RDONLY, NULL, &img, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "not a regular file or a block device"));
	EXPECT_EQ(snap_image_open("/nonexistent/x.img", SNAP_OPEN_RDONLY, NULL, &img, &err),
		  -ENOENT);
}

TEST_F(img, future_version_is_refused_on_open)
{
	struct snap_image img;
	struct error err;
	uint8_t v[4];
	int fd;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	put_le32(v, 7);
	fd = open(self->path, O_RDWR);
	ASSERT_EQ(pwrite(fd, v, 4, 8), 4);
	close(fd);
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), -ENOTSUP);
	EXPECT_NOT_NULL(
	    strstr(err.msg, "format version 7 is newer than this kvmsnap supports (2)"));
	EXPECT_NOT_NULL(strstr(err.msg, "image "));
}

TEST_F(img, empty_image_verifies)
{
	struct snap_verify_result res;
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	ASSERT_EQ(open_verify(self->path, true, &res, &err), 0);
	EXPECT_FALSE(res.complete);
	EXPECT_EQ(res.pages_checked, 624);
	EXPECT_FALSE(res.digests_checked);
	/* An empty image has no page headers set. */
	flip(self->path, self->layout.sections[1].table_off + 8 * 3, 0x01);
	EXPECT_EQ(open_verify(self->path, false, &res, &err), -EINVAL);
	EXPECT_EQ(res.bad_page_headers, 1);
}

TEST_F(img, complete_image_verifies)
{
	struct snap_verify_result res;
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_SIZE, false, &err), 0);
	ASSERT_EQ(make_complete(self, &err), 0);
	ASSERT_EQ(open_verify(self->path, false, &res, &err), 0);
	EXPECT_TRUE(res.complete);
	EXPECT_TRUE(res.footer_ok);
	EXPECT_TRUE(res.state_ok);
	EXPECT_FALSE(res.digests_checked);
	EXPECT_EQ(res.pages_checked, 624);
	ASSERT_EQ(open_verify(self->path, true, &res, &err), 0);
	EXPECT_TRUE(res.digests_checked);
	EXPECT_EQ(res.bad_digests, 0);
}

TEST_F(img, page_header_flip_is_detected)
{
	const struct snap_section *s = &self->layout.sections[0];
	struct snap_verify_result res;
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	ASSERT_EQ(make_complete(self, &err), 0);
	flip(self->path, s->table_off + 8 * 100 + 2, 0x10);
	EXPECT_EQ(open_verify(self->path, false, &res, &err), -EINVAL);
	EXPECT_EQ(res.bad_page_headers, 1);
	EXPECT_NOT_NULL(strstr(err.msg, "page header 100 is 0x"));
	EXPECT_NOT_NULL(strstr(err.msg, "pc.ram"));
}

TEST_F(img, deep_verify_detects_a_data_flip)
{
	const struct snap_section *s = &self->layout.sections[1];
	struct snap_verify_result res;
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	ASSERT_EQ(make_complete(self, &err), 0);
	flip(self->path, s->data_off + 5 * 4096 + 123, 0x80);
	/* The structure is intact; only the digests can tell, and name the page. */
	EXPECT_EQ(open_verify(self->path, false, &res, &err), 0);
	EXPECT_EQ(open_verify(self->path, true, &res, &err), -EBADMSG);
	EXPECT_EQ(res.bad_page_digests, 1);
	/* Recomputed from the data: its block's digest and the region's differ too. */
	EXPECT_EQ(res.bad_digests, 2);
	EXPECT_NOT_NULL(strstr(err.msg, "region vga.vram: page 5 does not match its digest"));
}

/* Every byte of every structure: a flip is caught by open or by verify. */
TEST_F_TIMEOUT(img, every_structure_byte_flip_is_detected, 300)
{
	struct snap_verify_result res;
	struct error err;
	struct snap_image img;
	uint64_t off, missed = 0, checked = 0, state_used;
	unsigned int k;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_SIZE, false, &err), 0);
	ASSERT_EQ(make_complete(self, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	state_used = img.hdr.state_used;
	self->layout = img.layout;
	snap_image_close(&img);
	ASSERT_EQ(self->layout.order, SNAP_ORDER_SIZE);

#define CHECK_BYTE(o, deep)                                                                   \
	do {                                                                                  \
		flip(self->path, (o), 0x04);                                                  \
		if (open_verify(self->path, (deep), &res, &err) == 0) {                       \
			if (missed++ < 5)                                                     \
				TH_LOG("flip at %llu not detected", (unsigned long long)(o)); \
		}                                                                             \
		flip(self->path, (o), 0x04);                                                  \
		checked++;                                                                    \
	} while (0)

	/* Header and VM start section. */
	for (off = 0; off < 8192; off++)
		CHECK_BYTE(off, false);
	/* The used part of the VM state area. */
	for (off = 0; off < state_used; off++)
		CHECK_BYTE(self->layout.state_off + off, false);
	/* Descriptor, page header table and padding of every section. */
	for (k = 0; k < self->layout.nr_sections; k++) {
		const struct snap_section *s = &self->layout.sections[k];
		uint64_t tables_end = s->blocks_off + 8 * ((s->pages + 511) / 512);

		for (off = s->offset; off < s->hash_off; off++)
			CHECK_BYTE(off, false);
		/* The digest tables: only deep verify reads them. */
		for (off = s->hash_off; off < tables_end; off++)
			CHECK_BYTE(off, true);
		for (off = tables_end; off < s->data_off; off++)
			CHECK_BYTE(off, false);
	}
	/* Footer. */
	for (off = 0; off < 4096; off++)
		CHECK_BYTE(self->layout.footer_off + off, false);
#undef CHECK_BYTE
	EXPECT_EQ(missed, 0);
	EXPECT_GT(checked, 8192 + 4096);
	ASSERT_EQ(open_verify(self->path, true, &res, &err), 0);
}

TEST_F(img, interrupted_snapshot_is_refused)
{
	struct snap_verify_result res;
	struct snap_image img;
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	ASSERT_EQ(make_complete(self, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &img, &err), 0);
	img.hdr.state = SNAP_STATE_WRITING;
	img.hdr.generation = 3;
	ASSERT_EQ(snap_image_write_header(&img, true, &err), 0);
	snap_image_close(&img);
	EXPECT_EQ(open_verify(self->path, false, &res, &err), -EINVAL);
	EXPECT_NOT_NULL(
	    strstr(err.msg, "is 'writing': the snapshot of generation 3 was interrupted"));
	/* Complete again, but the footer still says generation 1. */
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &img, &err), 0);
	img.hdr.state = SNAP_STATE_COMPLETE;
	img.hdr.flags = 0; /* as a writer clears it */
	ASSERT_EQ(snap_image_write_header(&img, true, &err), 0);
	snap_image_close(&img);
	EXPECT_EQ(open_verify(self->path, false, &res, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "footer generation 1 does not match the header's 3"));
}

TEST_F(img, unaligned_io_through_bounce_buffers)
{
	struct snap_target_opts o = {.direct = true};
	struct snap_image img;
	struct error err;
	uint64_t base = self->layout.sections[0].data_off, len = 3 * MiB_ / 2 + 777;
	uint8_t *src = malloc(len + 1), *got = malloc(len + 1), *raw = malloc(len);
	uint64_t i;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, &o, &img, &err), 0);
	/* Exercise the bounce path even where the file system has no O_DIRECT. */
	TH_LOG("O_DIRECT %s here", img.direct ? "works" : "is unsupported");
	img.direct = true;
	for (i = 0; i < len + 1; i++)
		src[i] = (uint8_t)(i * 13 + 5);
	/* Unaligned buffer, offset and length, spanning several bounce windows. */
	ASSERT_EQ(snap_image_pwrite(&img, src + 1, len, base + 1000, &err), 0);
	ASSERT_EQ(snap_image_pread(&img, got + 1, len, base + 1000, &err), 0);
	EXPECT_EQ(memcmp(src + 1, got + 1, len), 0);
	/* The bytes around the write were kept (read-modify-write). */
	ASSERT_EQ(snap_image_pread(&img, raw, 1000, base, &err), 0);
	for (i = 0; i < 1000; i++)
		if (raw[i])
			break;
	EXPECT_EQ(i, 1000);
	/* A few bytes inside one block; an aligned request with an unaligned buffer. */
	ASSERT_EQ(snap_image_pwrite(&img, "hello", 5, base + 5000, &err), 0);
	ASSERT_EQ(snap_image_pread(&img, got + 3, 8192, base + 4096, &err), 0);
	EXPECT_EQ(memcmp(got + 3 + 904, "hello", 5), 0);
	EXPECT_EQ(memcmp(got + 3, src + 1 + 3096, 904), 0);
	/* Outside the image. */
	EXPECT_EQ(snap_image_pread(&img, got, 4096, self->layout.image_size, &err), -EINVAL);
	snap_image_close(&img);
	free(src);
	free(got);
	free(raw);
}

TEST_F(img, enospc_leaves_no_file)
{
	char path[320], want[400];
	struct snap_config big;
	struct snap_layout l;
	struct pc_config pc = {.ram_size = 64 * MiB_, .vram_size = 64 << 10, .nr_cpus = 1};
	struct error err;

	TEST_REQUIRE(geteuid() == 0, "needs root to mount a small tmpfs");
	snprintf(self->mnt, sizeof(self->mnt), "%s/mnt", self->dir);
	ASSERT_EQ(mkdir(self->mnt, 0700), 0);
	if (mount("tmpfs", self->mnt, "tmpfs", 0, "size=8M")) {
		self->mnt[0] = '\0';
		SKIP(return, "cannot mount tmpfs: %s", strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/big.img", self->mnt);
	ASSERT_EQ(snapcfg__from_pc(&pc, &big, NULL), 0);
	/*
	 * 16384 + 16 + 64 + 32 pages: 4096 + 4096 + 49152 state + 67699584
	 * TotalRAM + 132248 digest tables + 14312 padding + 4096 = 67907584
	 * bytes, 64.76 MiB.
	 */
	ASSERT_EQ(snap_layout_compute(&big, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.image_size, 67907584);
	EXPECT_EQ(create(path, &big, SNAP_ORDER_REGISTRY, false, &err), -ENOSPC);
	snprintf(want, sizeof(want), "%s: not enough space for the 64.8 MiB image", path);
	EXPECT_STREQ(err.msg, want);
	EXPECT_NE(access(path, F_OK), 0);
}

/* ---- the CLI ---- */

static uint64_t jget(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return json_object_get_uint64(v);
}

TEST_F(img, cli_size_from_image_round_trip)
{
	static struct cli_out a, b;
	struct json_object *ja, *jb, *ra = NULL, *rb = NULL;
	size_t i;

	CLI(&a, "create", self->path, "--mem", "2M", "--vram", "64K", "--vcpus", "3", "--order",
	    "size");
	ASSERT_EQ(a.status, 0);
	EXPECT_NOT_NULL(strstr(a.out, "created"));
	CLI(&a, "size", "--mem", "2M", "--vram", "64K", "--vcpus", "3", "--order", "size",
	    "--json");
	ASSERT_EQ(a.status, 0);
	CLI(&b, "size", "--from-image", self->path, "--json");
	ASSERT_EQ(b.status, 0);
	ja = json_tokener_parse(a.out);
	jb = json_tokener_parse(b.out);
	ASSERT_NOT_NULL(ja);
	ASSERT_NOT_NULL(jb);
	EXPECT_EQ(jget(jb, "vcpus"), 3);
	EXPECT_EQ(jget(jb, "image_size"), jget(ja, "image_size"));
	EXPECT_EQ(jget(jb, "padding"), jget(ja, "padding"));
	EXPECT_EQ(jget(jb, "total_ram"), jget(ja, "total_ram"));
	json_object_object_get_ex(ja, "regions", &ra);
	json_object_object_get_ex(jb, "regions", &rb);
	ASSERT_EQ(json_object_array_length(rb), 4);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(jget(json_object_array_get_idx(rb, i), "size"),
			  jget(json_object_array_get_idx(ra, i), "size"));
	/* The image's own order is the default; the text form shows every term. */
	EXPECT_STREQ(json_object_get_string(json_object_object_get(jb, "order")), "size");
	json_object_put(ja);
	json_object_put(jb);
	CLI(&a, "size", "--from-image", self->path);
	ASSERT_EQ(a.status, 0);
	EXPECT_NOT_NULL(strstr(a.out, "TotalRAM"));
	EXPECT_NOT_NULL(strstr(a.out, "/ 4096 \u00d7 (4096 + 8) = 624 \u00d7 4104"));
	EXPECT_NOT_NULL(strstr(a.out, "padding"));
	EXPECT_NOT_NULL(strstr(a.out, "image size"));
}

TEST_F(img, cli_info_and_verify)
{
	static struct cli_out o;
	struct json_object *j;
	struct error err;
	char want[400];

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, false, &err), 0);
	CLI(&o, "verify", self->path);
	EXPECT_EQ(o.status, 0);
	snprintf(want, sizeof(want), "image %s: OK (generation 0, empty, 624 pages checked)\n",
		 self->path);
	EXPECT_STREQ(o.out, want);
	ASSERT_EQ(make_complete(self, &err), 0);
	CLI(&o, "verify", self->path, "--deep");
	EXPECT_EQ(o.status, 0);
	snprintf(want, sizeof(want),
		 "image %s: OK (generation 1, complete, 624 pages checked, digests match)\n",
		 self->path);
	EXPECT_STREQ(o.out, want);
	CLI(&o, "info", self->path);
	EXPECT_EQ(o.status, 0);
	EXPECT_NOT_NULL(strstr(o.out, "state:              complete"));
	EXPECT_NOT_NULL(strstr(o.out, "snapshot completed: 2023-11-14T22:13:20.001000000Z"));
	EXPECT_NOT_NULL(strstr(o.out, "converged:        yes"));
	CLI(&o, "info", self->path, "--json");
	EXPECT_EQ(o.status, 0);
	j = json_tokener_parse(o.out);
	ASSERT_NOT_NULL(j);
	EXPECT_EQ(jget(j, "generation"), 1);
	EXPECT_STREQ(json_object_get_string(json_object_object_get(j, "state")), "complete");
	EXPECT_EQ(jget(json_object_object_get(j, "footer"), "passes"), 2);
	EXPECT_EQ(json_object_array_length(json_object_object_get(j, "sections")), 4);
	json_object_put(j);

	/* A corrupted image: exit 1 and one error line. */
	flip(self->path, self->layout.sections[2].table_off, 0x01);
	CLI(&o, "verify", self->path);
	EXPECT_EQ(o.status, 1);
	EXPECT_STREQ(o.out, "");
	EXPECT_EQ(strncmp(o.err, "kvmsnap: error: image ", 22), 0);
	EXPECT_EQ(strchr(o.err, '\n'), o.err + strlen(o.err) - 1);
	CLI(&o, "verify", self->path, "--json");
	EXPECT_EQ(o.status, 1);
	j = json_tokener_parse(o.out);
	ASSERT_NOT_NULL(j);
	EXPECT_FALSE(json_object_get_boolean(json_object_object_get(j, "ok")));
	EXPECT_EQ(jget(j, "bad_page_headers"), 1);
	json_object_put(j);
}

TEST_F(img, cli_usage_errors)
{
	static struct cli_out o;

	CLI(&o, "verify");
	EXPECT_EQ(o.status, 2);
	CLI(&o, "size", "--bogus");
	EXPECT_EQ(o.status, 2);
	CLI(&o, "size", "--mem", "lots");
	EXPECT_EQ(o.status, 2);
	CLI(&o, "size", "--mem", "1M");
	EXPECT_EQ(o.status, 2);
	CLI(&o, "size", "--order", "random");
	EXPECT_EQ(o.status, 2);
	CLI(&o, "size", "--from-image", self->path, "--mem", "1G");
	EXPECT_EQ(o.status, 2);
	CLI(&o, "verify", self->path, "--force");
	EXPECT_EQ(o.status, 2);
	CLI(&o, "frobnicate");
	EXPECT_EQ(o.status, 2);
	CLI(&o, "create", "--help");
	EXPECT_EQ(o.status, 0);
	EXPECT_NOT_NULL(strstr(o.out, "usage: kvmsnap image create"));
	CLI(&o, "verify", self->path);
	EXPECT_EQ(o.status, 1);
	EXPECT_NOT_NULL(strstr(o.err, "kvmsnap: error: "));
}

TEST_HARNESS_MAIN
