// SPDX-License-Identifier: GPL-2.0
/*
 * The append stream (snapshot/append.h), the benchmark baseline: its two
 * block codecs, with hostile input refused; and live runs of the precopy
 * engine against the fake VM (tests/lib/fakevm.h), whose replay must be
 * exactly the memory at the pause, in a file that grows with the passes.
 */
#include "../harness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "../lib/fakevm.h"
#include "lib/le.h"
#include "snapshot/append.h"

static void test_cfg(struct snap_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->machine, SNAP_MACHINE_PC);
	cfg->vcpus = 2;
	cfg->ram_size = 8 << 20;
	cfg->vram_size = 1 << 20;
	cfg->nr_regions = 2;
	strcpy(cfg->regions[0].id, "pc.ram");
	cfg->regions[0].size = 8 << 20;
	strcpy(cfg->regions[1].id, "vga.vram");
	cfg->regions[1].size = 1 << 20;
}

/* After a change to a block: its checksum again, so that the check behind it is reached. */
static void resum(uint8_t *buf)
{
	put_le64(buf + 0xff8, XXH3_64bits(buf, 0xff8));
}

TEST(header_round_trip)
{
	struct snap_append_header h = {.version = 1, .started_ns = 1234567}, out;
	uint8_t buf[4096];
	struct error err = {0};

	test_cfg(&h.cfg);
	snap_append_header_encode(&h, buf);
	EXPECT_EQ(memcmp(buf, "KSAPPEND", 8), 0);
	EXPECT_EQ(get_le32(buf + 0x14), 2);
	EXPECT_STREQ((char *)buf + 0x80 + 48, "vga.vram");
	ASSERT_EQ(snap_append_header_decode(buf, &out, &err), 0);
	EXPECT_EQ(out.version, 1);
	EXPECT_EQ(out.started_ns, 1234567);
	EXPECT_EQ(snap_config_compare(&h.cfg, &out.cfg, &err), 0);
}

/* One change to a good header, and the words the refusal must contain. */
struct header_case {
	unsigned int off;
	uint64_t val;
	unsigned int width; /* 1, 4 or 8 */
	bool resum;
	const char *want;
};

static const struct header_case header_cases[] = {
    {0x000, 'X', 1, false, "bad magic"},
    {0x100, 1, 1, false, "checksum"},
    {0x008, 2, 4, true, "version 2"},
    {0x010, 512, 4, true, "page size 512"},
    {0x014, 0, 4, true, "0 regions"},
    {0x014, 17, 4, true, "17 regions"},
    {0x014, 3, 4, true, "empty id"},		  /* a third region, all zero */
    {0x0d0, 4095, 8, true, "multiple of 4096"},	  /* region 1's size */
    {0x0b0, 'x', 1, true, "region 1: bad entry"}, /* no NUL in region 1's id field */
    {0x044, 1, 4, true, "reserved"},
    {0x200, 1, 1, true, "reserved"},
    {0x040, 0, 4, true, "vcpus"},
};

TEST(header_hostile_input_is_refused)
{
	struct snap_append_header h = {.version = 1}, out;
	uint8_t good[4096], buf[4096];
	unsigned int i;

	test_cfg(&h.cfg);
	snap_append_header_encode(&h, good);
	for (i = 0; i < ARRAY_SIZE(header_cases); i++) {
		const struct header_case *c = &header_cases[i];
		struct error err = {0};

		memcpy(buf, good, sizeof(buf));
		if (c->off == 0x0b0)
			memset(buf + 0x80 + 48, 'x', 32);
		else if (c->width == 1)
			buf[c->off] ^= (uint8_t)c->val;
		else if (c->width == 4)
			put_le32(buf + c->off, (uint32_t)c->val);
		else
			put_le64(buf + c->off, c->val);
		if (c->resum)
			resum(buf);
		EXPECT_EQ(snap_append_header_decode(buf, &out, &err), -EPROTO);
		if (!strcasestr(err.msg, c->want))
			TH_LOG("case %u: want '%s', got '%s'", i, c->want, err.msg);
		EXPECT_NOT_NULL(strcasestr(err.msg, c->want));
	}
}

static void pages_chunk(struct snap_append_chunk *c)
{
	memset(c, 0, sizeof(*c));
	c->type = SNAP_APPEND_PAGES;
	c->seq = 7;
	c->pass = 3;
	c->nr_runs = 3;
	c->runs[0] = (struct snap_append_run){.first = 0, .count = 16, .region = 0};
	c->runs[1] = (struct snap_append_run){
	    .first = 100, .count = 28, .region = 0, .flags = SNAP_APPEND_RUN_ZERO};
	c->runs[2] = (struct snap_append_run){.first = 255, .count = 1, .region = 1};
	c->payload = 17 * 4096;
}

TEST(chunk_round_trip)
{
	struct snap_append_chunk c, out;
	struct snap_config cfg;
	uint8_t buf[4096];
	struct error err = {0};
	unsigned int i;

	test_cfg(&cfg);
	pages_chunk(&c);
	snap_append_chunk_encode(&c, cfg.nr_regions, buf);
	ASSERT_EQ(snap_append_chunk_decode(buf, &cfg, &out, &err), 0);
	EXPECT_EQ(out.type, SNAP_APPEND_PAGES);
	EXPECT_EQ(out.seq, 7);
	EXPECT_EQ(out.pass, 3);
	EXPECT_EQ(out.payload, 17 * 4096);
	ASSERT_EQ(out.nr_runs, 3);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(out.runs[i].first, c.runs[i].first);
		EXPECT_EQ(out.runs[i].count, c.runs[i].count);
		EXPECT_EQ(out.runs[i].region, c.runs[i].region);
		EXPECT_EQ(out.runs[i].flags, c.runs[i].flags);
	}

	memset(&c, 0, sizeof(c));
	c.type = SNAP_APPEND_STATE;
	c.seq = 8;
	c.state_used = 5000;
	c.payload = 8192;
	snap_append_chunk_encode(&c, cfg.nr_regions, buf);
	ASSERT_EQ(snap_append_chunk_decode(buf, &cfg, &out, &err), 0);
	EXPECT_EQ(out.state_used, 5000);

	memset(&c, 0, sizeof(c));
	c.type = SNAP_APPEND_END;
	c.seq = 9;
	c.end = (struct snap_append_end){.data_pages = 17,
					 .zero_pages = 28,
					 .end_off = 123 * 4096,
					 .passes = 4,
					 .flags = 1,
					 .downtime_us = 99,
					 .pause_ns = 42,
					 .digest_algo = SNAP_DIGEST_XXH3_TREE,
					 .digest = {0x1111, 0x2222}};
	snap_append_chunk_encode(&c, cfg.nr_regions, buf);
	ASSERT_EQ(snap_append_chunk_decode(buf, &cfg, &out, &err), 0);
	EXPECT_EQ(memcmp(&out.end, &c.end, sizeof(c.end)), 0);
}

/* A good PAGES chunk changed one way, and the words its refusal must contain. */
static void expect_chunk_refused(struct th_result *_r, void (*change)(uint8_t *buf),
				 const char *want)
{
	struct snap_append_chunk c, out;
	struct snap_config cfg;
	uint8_t buf[4096];
	struct error err = {0};

	test_cfg(&cfg);
	pages_chunk(&c);
	snap_append_chunk_encode(&c, cfg.nr_regions, buf);
	change(buf);
	if (memcmp(buf, "KSACHUNK", 8) == 0 && buf[0x100] != 0xee)
		resum(buf);
	EXPECT_EQ(snap_append_chunk_decode(buf, &cfg, &out, &err), -EPROTO);
	if (!strstr(err.msg, want))
		TH_LOG("want '%s', got '%s'", want, err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, want));
}

static void bad_magic(uint8_t *b)
{
	b[3] = 'x';
}
static void bad_sum(uint8_t *b)
{
	b[0x100] = 0xee;
}
static void bad_type(uint8_t *b)
{
	put_le32(b + 0x08, 9);
}
static void no_runs(uint8_t *b)
{
	put_le32(b + 0x0c, 0);
}
static void too_many_runs(uint8_t *b)
{
	put_le32(b + 0x0c, SNAP_APPEND_MAX_RUNS + 1);
}
static void region_out_of_range(uint8_t *b)
{
	put_le16(b + 0x40 + 12, 2);
}
static void run_past_region(uint8_t *b)
{
	put_le64(b + 0x40 + 32, 256); /* run 2: region 1 has 256 pages */
}
static void run_wraps(uint8_t *b)
{
	put_le64(b + 0x40, UINT64_MAX - 4); /* first + count overflows */
}
static void empty_run(uint8_t *b)
{
	put_le32(b + 0x40 + 8, 0);
}
static void unknown_flag(uint8_t *b)
{
	put_le16(b + 0x40 + 14, 4);
}
static void short_payload(uint8_t *b)
{
	put_le64(b + 0x18, 16 * 4096);
}
static void odd_payload(uint8_t *b)
{
	put_le64(b + 0x18, 17 * 4096 + 1);
}
static void no_pass(uint8_t *b)
{
	put_le32(b + 0x20, 0);
}
static void stray_run(uint8_t *b)
{
	b[0x40 + 3 * 16] = 1; /* a fourth run's bytes, past the count */
}

TEST(chunk_hostile_input_is_refused)
{
	expect_chunk_refused(_r, bad_magic, "bad magic");
	expect_chunk_refused(_r, bad_sum, "checksum");
	expect_chunk_refused(_r, bad_type, "unknown type 9");
	expect_chunk_refused(_r, no_runs, "0 runs");
	expect_chunk_refused(_r, too_many_runs, "252 runs");
	expect_chunk_refused(_r, region_out_of_range, "region 2 of 2");
	expect_chunk_refused(_r, run_past_region, "outside region vga.vram");
	expect_chunk_refused(_r, run_wraps, "outside region pc.ram");
	expect_chunk_refused(_r, empty_run, "outside region");
	expect_chunk_refused(_r, unknown_flag, "unknown flags");
	expect_chunk_refused(_r, short_payload, "payload 65536 bytes, its runs hold 69632");
	expect_chunk_refused(_r, odd_payload, "not a multiple of 4096");
	expect_chunk_refused(_r, no_pass, "pass 0");
	expect_chunk_refused(_r, stray_run, "after its runs");
}

/* ---- live runs against the fake VM ---- */

FIXTURE(append)
{
	struct fake_vm f;
	struct snap_append_file file;
	char dir[64], path[96];
	bool started;
};

static void setup(struct _fixture_append *self, bool holes, struct th_result *_r)
{
	struct error err = {0};

	self->file.io.fd = -1;
	strcpy(self->dir, "/tmp/kvmsnap-append-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/stream", self->dir);
	ASSERT_EQ(fake_vm_init(&self->f, holes), 0);
	ASSERT_EQ(snap_append_open(&self->file, self->path, true, false, &err), 0);
	if (!self->file.io.direct)
		TH_LOG("buffered: %s", self->file.direct_why);
	ASSERT_EQ(fake_vm_start(&self->f), 0);
	self->started = true;
}

FIXTURE_SETUP(append)
{
	setup(self, false, _r);
}

FIXTURE_TEARDOWN(append)
{
	char cmd[256];

	if (self->started)
		fake_vm_stop(&self->f);
	snap_append_close(&self->file);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

static uint64_t total_ram(void)
{
	uint64_t total = 0;
	unsigned int r;

	for (r = 0; r < FAKE_NR_REGIONS; r++)
		total += fake_regions[r].size;
	return total;
}

/* Replay path: 0 if it decodes and equals the memory at the pause; rp keeps what it read. */
static int replay_matches(struct fake_vm *f, const char *path, struct snap_append_replay *rp)
{
	struct error err = {0};
	unsigned int r;
	int bad = 0;

	if (snap_append_replay(path, rp, &err)) {
		fprintf(stderr, "# replay: %s\n", err.msg);
		return -1;
	}
	for (r = 0; r < FAKE_NR_REGIONS; r++) {
		uint64_t pg, nbad = 0, first = 0;

		for (pg = 0; pg < fake_pages_of(r); pg++)
			if (memcmp(rp->mem[r] + pg * 4096, f->expect[r] + pg * 4096, 4096) &&
			    !nbad++)
				first = pg;
		if (nbad)
			fprintf(stderr, "# region %u: %llu pages differ, the first %llu\n", r,
				(unsigned long long)nbad, (unsigned long long)first);
		bad += !!nbad;
	}
	return bad;
}

/* What the run wrote, and what a reader makes of the file, agree with each other and the size. */
static void check_file(struct _fixture_append *self, struct th_result *_r,
		       const struct snap_report *rep, struct snap_append_replay *rp)
{
	const struct snap_append_file *a = &self->file;
	struct stat st;
	uint64_t pass_pages = 0;
	unsigned int i;

	ASSERT_EQ(stat(self->path, &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, a->file_bytes);
	EXPECT_EQ(rep->bytes_written, a->file_bytes);
	EXPECT_EQ(rp->file_bytes, a->file_bytes);
	/* Headers, page data and the state, nothing else: zero runs carry no data. */
	EXPECT_EQ(a->file_bytes, (1 + a->chunks + a->data_pages) * 4096 +
				     ALIGN_UP((uint64_t)rp->state_used, 4096));
	EXPECT_GE((uint64_t)st.st_size, a->data_pages * 4096);
	EXPECT_EQ(rp->end.data_pages, a->data_pages);
	EXPECT_EQ(rp->end.zero_pages, a->zero_pages);
	EXPECT_EQ(rp->chunks, a->chunks);
	EXPECT_EQ(rp->end.passes, rep->nr_passes);
	/* Every page each pass handed over is in the file: it only grows. */
	for (i = 0; i < rep->nr_passes; i++)
		pass_pages += rep->passes[i].dirty_pages;
	EXPECT_EQ(a->data_pages + a->zero_pages, pass_pages);
	EXPECT_GT(rp->state_used, 0);
	for (i = 0; i < FAKE_NR_REGIONS; i++) {
		EXPECT_EQ(rep->digests[i], rp->end.digest[i]);
		EXPECT_EQ(rep->digests[i],
			  snap_digest_pages(self->f.expect[i], fake_pages_of(i), NULL));
	}
}

TEST_F(append, replay_is_the_memory_at_the_pause)
{
	struct snap_options o = {.max_downtime_ms = 5};
	struct snap_append_replay rp;
	struct snap_report rep;
	struct error err = {0};

	ASSERT_EQ(snap_append_write(&self->file, &self->f.vm, &o, &rep, &err), 0);
	TH_LOG("%u passes, %llu chunks, %llu data pages, %llu bytes, %llu writes by the mutator",
	       rep.nr_passes, (unsigned long long)self->file.chunks,
	       (unsigned long long)self->file.data_pages, (unsigned long long)self->file.file_bytes,
	       (unsigned long long)self->f.writes);
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	EXPECT_GE(rep.nr_passes, 2);
	EXPECT_EQ(replay_matches(&self->f, self->path, &rp), 0);
	check_file(self, _r, &rep, &rp);
	snap_append_replay_free(&rp);
}

/*
 * A guest that never rests and a threshold it never meets: every pass adds
 * its pages, so the file outgrows RAM, and more passes make it larger.
 */
TEST_F(append, the_file_grows_with_the_passes)
{
	struct snap_options o = {.threshold = 1, .max_passes = 2};
	struct snap_append_replay rp;
	struct snap_report rep;
	struct error err = {0};
	uint64_t small;

	self->f.always_dirty = true;
	ASSERT_EQ(snap_append_write(&self->file, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_EQ(rep.nr_passes, 3);
	EXPECT_EQ(replay_matches(&self->f, self->path, &rp), 0);
	check_file(self, _r, &rep, &rp);
	snap_append_replay_free(&rp);
	small = self->file.file_bytes;
	EXPECT_GT(small, total_ram());

	snap_append_close(&self->file);
	ASSERT_EQ(snap_append_open(&self->file, self->path, true, true, &err), 0);
	o.max_passes = 12;
	ASSERT_EQ(snap_append_write(&self->file, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_EQ(rep.nr_passes, 13);
	EXPECT_EQ(replay_matches(&self->f, self->path, &rp), 0);
	check_file(self, _r, &rep, &rp);
	EXPECT_EQ(rp.max_pass, 13);
	snap_append_replay_free(&rp);
	TH_LOG("3 passes: %llu bytes, 13 passes: %llu bytes (RAM %llu)", (unsigned long long)small,
	       (unsigned long long)self->file.file_bytes, (unsigned long long)total_ram());
	EXPECT_GT(self->file.file_bytes, small);
}

/* Memfd holes become zero runs without data; the replay has the zeros. */
TEST(memfd_holes_are_zero_runs)
{
	struct _fixture_append fx, *self = &fx;
	struct snap_options o = {.max_downtime_ms = 5};
	struct snap_append_replay rp;
	struct snap_report rep;
	struct error err = {0};
	char cmd[256];

	memset(&fx, 0, sizeof(fx));
	setup(self, true, _r);
	if (_r->failed)
		return;
	EXPECT_EQ(snap_append_write(&self->file, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_GT(self->file.zero_pages, 0);
	EXPECT_EQ(replay_matches(&self->f, self->path, &rp), 0);
	check_file(self, _r, &rep, &rp);
	snap_append_replay_free(&rp);
	fake_vm_stop(&self->f);
	snap_append_close(&self->file);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	EXPECT_EQ(system(cmd), 0);
}

TEST_F(append, a_failed_run_resumes_and_leaves_no_end)
{
	struct snap_options o = {.threshold = 1, .max_passes = 10};
	struct snap_append_replay rp;
	struct snap_report rep;
	struct error err = {0};

	self->f.fail_fetch_at = 3;
	EXPECT_EQ(snap_append_write(&self->file, &self->f.vm, &o, &rep, &err), -EIO);
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	EXPECT_EQ(snap_append_replay(self->path, &rp, &err), -EPROTO);
	TH_LOG("replay says: %s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "no end chunk"));
	snap_append_replay_free(&rp);
}

/* Copy the first len bytes of src to dst, then append extra (may be NULL). */
static int copy_prefix(const char *src, const char *dst, uint64_t len, const char *extra)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "head -c %llu %s > %s%s%s%s", (unsigned long long)len, src, dst,
		 extra ? " && printf '" : "", extra ? extra : "", extra ? "' >> " : "");
	if (extra) {
		size_t n = strlen(cmd);

		snprintf(cmd + n, sizeof(cmd) - n, "%s", dst);
	}
	return system(cmd);
}

static void expect_replay_refused(struct th_result *_r, const char *path, const char *want)
{
	struct snap_append_replay rp;
	struct error err = {0};

	EXPECT_NE(snap_append_replay(path, &rp, &err), 0);
	if (!strstr(err.msg, want))
		TH_LOG("want '%s', got '%s'", want, err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, want));
	snap_append_replay_free(&rp);
}

TEST_F(append, damaged_files_are_refused_with_the_cause)
{
	struct snap_options o = {.max_downtime_ms = 5};
	struct snap_report rep;
	struct error err = {0};
	char bad[128];
	uint64_t size;
	int fd;

	ASSERT_EQ(snap_append_write(&self->file, &self->f.vm, &o, &rep, &err), 0);
	size = self->file.file_bytes;
	snprintf(bad, sizeof(bad), "%s/bad", self->dir);

	ASSERT_EQ(copy_prefix(self->path, bad, 100, NULL), 0);
	expect_replay_refused(_r, bad, "no file header");
	ASSERT_EQ(copy_prefix(self->path, bad, 4096, NULL), 0);
	expect_replay_refused(_r, bad, "no end chunk");
	ASSERT_EQ(copy_prefix(self->path, bad, 4096 + 100, NULL), 0);
	expect_replay_refused(_r, bad, "truncated in chunk header 0");
	ASSERT_EQ(copy_prefix(self->path, bad, 4096 * 3, NULL), 0);
	expect_replay_refused(_r, bad, "run past the end");
	ASSERT_EQ(copy_prefix(self->path, bad, size - 4096, NULL), 0);
	expect_replay_refused(_r, bad, "no end chunk");
	ASSERT_EQ(copy_prefix(self->path, bad, size, "junk"), 0);
	expect_replay_refused(_r, bad, "4 bytes after the end chunk");

	/*
	 * A page's data changed: the end chunk's digest catches it. The first
	 * page of pc.bios, which the mutator never writes: its only record is
	 * in pass 1, chunk 2, after pc.ram's (8 MiB) and vga.vram's (1 MiB).
	 */
	ASSERT_EQ(copy_prefix(self->path, bad, size, NULL), 0);
	fd = open(bad, O_WRONLY);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(pwrite(fd, "x", 1, 4 * 4096 + (9 << 20) + 17), 1);
	close(fd);
	expect_replay_refused(_r, bad, "does not match the end chunk's digest");

	/* A chunk header changed: its checksum. */
	ASSERT_EQ(copy_prefix(self->path, bad, size, NULL), 0);
	fd = open(bad, O_WRONLY);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(pwrite(fd, "x", 1, 4096 + 0x41), 1);
	close(fd);
	expect_replay_refused(_r, bad, "checksum mismatch");
}

TEST_F(append, open_refuses_what_it_must_not_overwrite)
{
	struct snap_append_file f2;
	struct error err = {0};
	char link[128];

	/* Exists: only with force. */
	EXPECT_EQ(snap_append_open(&f2, self->path, true, false, &err), -EEXIST);
	EXPECT_NOT_NULL(strstr(err.msg, "--force"));
	/* Held by the fixture's writer. */
	EXPECT_EQ(snap_append_open(&f2, self->path, true, true, &err), -EWOULDBLOCK);
	/* Never through a link, nor anything but a regular file. */
	snprintf(link, sizeof(link), "%s/link", self->dir);
	ASSERT_EQ(symlink("/tmp/kvmsnap-append-nowhere", link), 0);
	EXPECT_EQ(snap_append_open(&f2, link, true, true, &err), -EINVAL);
	EXPECT_EQ(snap_append_open(&f2, self->dir, true, true, &err), -EINVAL);
	snap_append_close(&f2);
}

TEST_HARNESS_MAIN
