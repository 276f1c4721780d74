// SPDX-License-Identifier: GPL-2.0
/*
 * The precopy writer and engine against a fake VM: plain memory, a mutator
 * thread that dirties pages while the snapshot runs, and a dirty log it
 * keeps itself. After the snapshot, the image (or, for the engine alone, a
 * plain-memory sink) must hold exactly the memory at the pause.
 */
#include "../harness.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "../lib/fakevm.h"
#include "snapshot/image.h"
#include "snapshot/precopy.h"
#include "snapshot/writer.h"

FIXTURE(writer)
{
	struct fake_vm f;
	struct snap_image img;
	char dir[64], path[96];
};

/*
 * Plain memory, or (holes) memfd-backed memory of which only every other
 * MiB of pc.ram was ever touched, as in a guest that has not used it all.
 */
static void setup_fake(struct _fixture_writer *self, bool holes, struct th_result *_r)
{
	struct fake_vm *f = &self->f;
	struct snap_target_opts topts = {.direct = true};
	struct error err = {0};

	strcpy(self->dir, "/tmp/kvmsnap-writer-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/img", self->dir);
	ASSERT_EQ(fake_vm_init(f, holes), 0);
	ASSERT_EQ(snap_image_prepare(self->path, &f->vm.cfg, &topts, &self->img, &err), 0);
	f->img = &self->img;
	ASSERT_EQ(fake_vm_start(f), 0);
}

FIXTURE_SETUP(writer)
{
	setup_fake(self, false, _r);
}

/* Stop the fake, close the image, remove the scratch folder: system()'s result. */
static int teardown_fake(struct _fixture_writer *self)
{
	char cmd[256];

	fake_vm_stop(&self->f);
	snap_image_close(&self->img);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	return system(cmd);
}

FIXTURE_TEARDOWN(writer)
{
	if (teardown_fake(self))
		TH_LOG("cannot remove %s", self->dir);
}

/*
 * Every data slot equals the memory copied at the pause. The writer's own
 * image is closed first: an image open for writing is locked against readers.
 */
static int image_matches(struct fake_vm *f, const char *path)
{
	struct snap_image img = {.fd = -1};
	struct error err = {0};
	unsigned int r;
	int bad = 0;

	snap_image_close(f->img);
	if (snap_image_open(path, SNAP_OPEN_RDONLY, NULL, &img, &err)) {
		fprintf(stderr, "# open: %s\n", err.msg);
		return -1;
	}
	for (r = 0; r < FAKE_NR_REGIONS; r++) {
		const struct snap_section *s = snap_layout_section(&img.layout, r);
		uint8_t *buf = malloc(fake_regions[r].size);

		if (pread(img.fd, buf, fake_regions[r].size, (off_t)s->data_off) !=
			(ssize_t)fake_regions[r].size ||
		    memcmp(buf, f->expect[r], fake_regions[r].size)) {
			uint64_t pg, nbad = 0, first = 0;

			for (pg = 0; pg < fake_pages_of(r); pg++)
				if (memcmp(buf + pg * 4096, f->expect[r] + pg * 4096, 4096) &&
				    !nbad++)
					first = pg;
			fprintf(stderr, "# region %u: %llu pages differ, the first %llu\n", r,
				(unsigned long long)nbad, (unsigned long long)first);
			bad++;
		}
		free(buf);
	}
	snap_image_close(&img);
	return bad;
}

TEST_F(writer, live_snapshot_is_the_memory_at_the_pause)
{
	struct snap_options o = {.max_downtime_ms = 5};
	struct snap_report rep;
	struct error err = {0};
	struct snap_verify_result vr;
	struct snap_image img = {.fd = -1};
	struct stat st;
	unsigned int r;

	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	TH_LOG("%u passes, %llu writes by the mutator, downtime %llu us", rep.nr_passes,
	       (unsigned long long)self->f.writes, (unsigned long long)rep.downtime_us);
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	EXPECT_GE(rep.nr_passes, 2);
	EXPECT_EQ(rep.generation, 1);
	ASSERT_EQ(image_matches(&self->f, self->path), 0);
	for (r = 0; r < FAKE_NR_REGIONS; r++)
		EXPECT_EQ(rep.digests[r],
			  snap_digest_pages(self->f.expect[r], fake_pages_of(r), NULL));
	ASSERT_EQ(stat(self->path, &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, self->img.layout.image_size);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_COMPLETE);
	EXPECT_EQ(snap_image_verify(&img, true, &vr, &err), 0);
	EXPECT_TRUE(vr.digests_checked);
	snap_image_close(&img);
}

/*
 * The same with manual dirty-log protection (KVM_CLEAR_DIRTY_LOG): a fetch
 * leaves the pages it reports writable, and the engine re-arms each chunk
 * just before it copies it. A write between the fetch and the re-arm must
 * still end up in the image, and one after it in the next pass.
 */
TEST_F(writer, live_snapshot_with_manual_protect_is_the_memory_at_the_pause)
{
	struct snap_vm_ops ops = fake_vm_ops;
	/*
	 * Hash workers and merged runs too: the digests must still be those of
	 * the bytes written, and a clean page written with its dirty neighbours
	 * must not hide a later write.
	 */
	struct snap_options o = {
	    .threshold = 1, .max_passes = 12, .hash_threads = 2, .merge_gap = 8};
	struct snap_report rep;
	struct error err = {0};
	unsigned int round, i, merged = 0;

	ops.clear = fake_op_clear;
	self->f.vm.ops = &ops;
	self->f.manual = true;
	self->f.always_dirty = true; /* never converges: every round runs all its passes */
	for (round = 0; round < 3; round++) {
		ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
		TH_LOG("round %u: %u passes (%s), %u re-arms, %llu writes by the mutator", round,
		       rep.nr_passes, rep.stop_reason, self->f.clears,
		       (unsigned long long)self->f.writes);
		EXPECT_EQ(rep.nr_passes, 13);
		EXPECT_EQ(rep.hash_threads, 2);
		/* Passes that merged clean pages into their writes. */
		for (i = 1; i < rep.nr_passes - 1; i++)
			merged += rep.passes[i].bytes > rep.passes[i].dirty_pages * SNAP_PAGE_SIZE;
		EXPECT_GT(self->f.clears, 0);
		ASSERT_EQ(image_matches(&self->f, self->path), 0);
		/* image_matches() closed the writer's image. */
		ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &self->img, &err), 0);
	}
	/*
	 * Some pass merged clean pages into its writes, else this proves little.
	 * Not every round: a mutator that ran long (a loaded machine) can leave
	 * no clean page between the dirty ones of a round.
	 */
	TH_LOG("%u passes merged clean pages", merged);
	EXPECT_GT(merged, 0);
}

/*
 * Pass 1 re-arms each chunk just before its copy: every chunk of every
 * writable region once, and what the guest wrote ahead of the copy is not
 * handed over twice. Whatever the chunk, the image is the memory at the
 * pause.
 */
TEST_F(writer, pass_one_rearms_each_chunk_before_its_copy)
{
	struct snap_vm_ops ops = fake_vm_ops;
	struct snap_options o = {.threshold = 1, .max_passes = 4, .clear_chunk = 100};
	uint64_t chunks = 0, before;
	struct snap_report rep;
	struct error err = {0};
	unsigned int r;

	ops.clear = fake_op_clear;
	self->f.vm.ops = &ops;
	self->f.manual = true;
	/* 100 is rounded down to whole bitmap words: 64 pages. */
	for (r = 0; r < FAKE_NR_REGIONS; r++)
		chunks += (fake_pages_of(r) + 63) / 64;
	before = self->f.fetches;
	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	TH_LOG("%u passes, %u re-arms, %llu fetches, pass 2: %llu dirty pages", rep.nr_passes,
	       self->f.clears, (unsigned long long)(self->f.fetches - before),
	       (unsigned long long)rep.passes[1].dirty_pages);
	EXPECT_GE(self->f.clears, chunks);
	EXPECT_GE(self->f.fetches - before, chunks);
	EXPECT_EQ(image_matches(&self->f, self->path), 0);
}

TEST_F(writer, second_snapshot_overwrites_in_place)
{
	struct snap_options o = {.max_downtime_ms = 5};
	struct snap_report rep;
	struct error err = {0};
	struct stat st;
	off_t size;

	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	ASSERT_EQ(stat(self->path, &st), 0);
	size = st.st_size;
	usleep(20000);
	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_EQ(rep.generation, 2);
	ASSERT_EQ(stat(self->path, &st), 0);
	EXPECT_EQ(st.st_size, size);
	EXPECT_EQ(image_matches(&self->f, self->path), 0);
}

/*
 * A series (--every) hands the writer its own stage: the writer uses it and
 * leaves it mapped, with what it faulted in, for the next snapshot.
 */
TEST_F(writer, a_callers_stage_is_used_and_kept)
{
	struct snap_stage stage = {0};
	struct snap_options o = {.max_downtime_ms = 5, .stage = &stage};
	struct snap_report rep;
	struct error err = {0};
	uint8_t *buf;

	ASSERT_EQ(snap_stage_alloc(&stage, SNAP_STAGE_BYTES, &err), 0);
	buf = stage.buf;
	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	/* Still mapped, and faulted in before the pause at least. */
	EXPECT_TRUE(stage.buf == buf);
	EXPECT_FALSE(stage.worker);
	EXPECT_GE(stage.ready, 2ULL << 20);
	buf[0] = 1;
	usleep(20000);
	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_EQ(rep.generation, 2);
	EXPECT_EQ(image_matches(&self->f, self->path), 0);
	EXPECT_TRUE(stage.buf == buf);
	snap_stage_free(&stage);
}

TEST_F(writer, threshold_and_pass_limit)
{
	struct snap_options o = {.threshold = 1, .max_passes = 3};
	struct snap_report rep;
	struct error err = {0};

	/* A 1-byte threshold cannot be met by a guest that always writes: the pass limit ends it. */
	self->f.always_dirty = true;
	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_EQ(rep.nr_passes, 4); /* 3 precopy passes and the final one */
	EXPECT_FALSE(rep.converged);
	EXPECT_STREQ(rep.stop_reason, "pass limit reached");
	EXPECT_EQ(image_matches(&self->f, self->path), 0);
}

static void expect_refused(struct _fixture_writer *self, struct th_result *_r)
{
	struct snap_image img = {.fd = -1};
	struct error err = {0};
	struct snap_verify_result vr;

	snap_image_close(&self->img); /* the writer's lock */
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_WRITING);
	EXPECT_NE(snap_image_verify(&img, false, &vr, &err), 0);
	TH_LOG("verify says: %s", err.msg);
	snap_image_close(&img);
}

TEST_F(writer, failed_dirty_log_resumes_and_leaves_writing)
{
	struct snap_options o = {.threshold = 1, .max_passes = 10};
	struct snap_report rep;
	struct error err = {0};

	self->f.fail_fetch_at = 3;
	EXPECT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), -EIO);
	EXPECT_TRUE(strstr(err.msg, "injected") != NULL);
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	expect_refused(self, _r);
}

TEST_F(writer, write_error_midway_resumes_and_leaves_writing)
{
	struct snap_options o = {.threshold = 1, .max_passes = 10};
	struct snap_report rep;
	struct error err = {0};
	int ret;

	self->f.break_fd_at = 2;
	ret = snap_write(&self->img, &self->f.vm, &o, &rep, &err);
	EXPECT_LT(ret, 0);
	TH_LOG("error: %s", err.msg);
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	expect_refused(self, _r);
}

/* Holes in a memfd are written as zeros without reading the mapping. */
#define HOLE 100 /* pages */

/*
 * Holes (memory the guest never touched) are written as zeros, not read;
 * and over a complete snapshot, a hole whose slot holds zeros already is
 * not written at all.
 */
TEST(memfd_holes_are_written_as_zeros)
{
	static const uint8_t zero_page[4096];
	struct _fixture_writer fx, *self = &fx;
	struct snap_options o = {.max_downtime_ms = 5};
	struct snap_report rep;
	struct error err = {0};
	unsigned int round, zero_slots, p;
	struct stat st;

	memset(&fx, 0, sizeof(fx));
	setup_fake(self, true, _r);
	if (_r->failed)
		return;
	/* Untouched, a hole stays a hole: writing it from the mapping would fill it. */
	ASSERT_EQ(fstat(self->f.vm.regions[0].memfd, &st), 0);
	EXPECT_LT((uint64_t)st.st_blocks * 512, fake_regions[0].size);
	/*
	 * Data in the first half of pages [0, HOLE), whatever the mutator does:
	 * their slots must not be kept below. How much of the rest it writes
	 * depends on how long the snapshot runs.
	 */
	memset(self->f.mem[0], 0x5a, HOLE / 2 * 4096);
	EXPECT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_EQ(image_matches(&self->f, self->path), 0);
	EXPECT_EQ(rep.digests[0], snap_digest_pages(self->f.expect[0], fake_pages_of(0), NULL));
	/*
	 * Over the complete snapshot, with the mutator quiet: punch a hole over
	 * pages [0, HOLE) (the pause's copy filled every hole). Their slots hold
	 * data, so they are written with zeros; in a third snapshot, with the
	 * hole punched again, their slots hold zeros and are kept. The hole
	 * starts its region, so no run's write can take its zeros along.
	 */
	self->f.quiet = true;
	for (round = 0; round < 2; round++) {
		/* The slots of [0, HOLE) hold what the last pause saw: which are zero. */
		for (p = 0, zero_slots = 0; p < HOLE; p++)
			zero_slots += !memcmp(self->f.expect[0] + p * 4096ULL, zero_page, 4096);
		ASSERT_EQ(fallocate(self->f.vm.regions[0].memfd,
				    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, HOLE * 4096),
			  0);
		ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &self->img, &err), 0);
		EXPECT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
		TH_LOG("snapshot %u: %llu holes kept, %llu bytes written", round + 2,
		       (unsigned long long)rep.zero_pages_kept,
		       (unsigned long long)rep.bytes_written);
		/* A slot that held zeros already is kept; not one with data. */
		EXPECT_EQ(rep.zero_pages_kept, zero_slots);
		if (round)
			EXPECT_EQ(zero_slots, HOLE);
		else
			EXPECT_LE(zero_slots, HOLE / 2);
		EXPECT_EQ(image_matches(&self->f, self->path), 0);
		EXPECT_EQ(rep.digests[0],
			  snap_digest_pages(self->f.expect[0], fake_pages_of(0), NULL));
	}
	EXPECT_EQ(teardown_fake(self), 0);
}

/* Quiet the mutator and wait until its last write has landed. */
static void quiet(struct fake_vm *f)
{
	uint64_t w;

	f->quiet = true;
	do {
		w = f->writes;
		usleep(20000);
	} while (w != f->writes);
}

/* Pages of the memfd that are holes: what the writer may leave unwritten. */
/* Pages in the memfd's holes; with longer_than, only in holes longer than that or at 0. */
static uint64_t hole_pages_longer(int fd, uint64_t size, uint64_t longer_than)
{
	uint64_t holes = 0, n;
	off_t off = 0, data;

	while ((uint64_t)off < size) {
		data = lseek(fd, off, SEEK_DATA);
		if (data < 0)
			data = (off_t)size;
		n = (uint64_t)(data - off) / 4096;
		if (!off || n > longer_than)
			holes += n;
		if ((uint64_t)data >= size)
			break;
		off = lseek(fd, data, SEEK_HOLE);
	}
	return holes;
}

static uint64_t hole_pages(int fd, uint64_t size)
{
	return hole_pages_longer(fd, size, 0);
}

static uint64_t holes_at_pause;

/*
 * A fake with memfd holes and manual protect (the engine re-arms by chunk,
 * 64 pages at a time), its mutator quiet.
 */
FIXTURE(chunked)
{
	struct _fixture_writer w;
	struct snap_vm_ops ops;
	struct snap_options o;
	struct snap_report rep;
	struct error err;
};

FIXTURE_SETUP(chunked)
{
	memset(self, 0, sizeof(*self));
	setup_fake(&self->w, true, _r);
	if (_r->failed)
		return;
	self->ops = fake_vm_ops;
	self->ops.clear = fake_op_clear;
	self->w.f.vm.ops = &self->ops;
	self->w.f.manual = true;
	self->o = (struct snap_options){.max_downtime_ms = 5, .clear_chunk = 64};
	quiet(&self->w.f);
}

FIXTURE_TEARDOWN(chunked)
{
	if (teardown_fake(&self->w))
		TH_LOG("cannot remove %s", self->w.dir);
}

/* From the second fetch on (pass 1's second chunk), page 100 of pc.ram is written. */
static void fill_page_100(struct fake_vm *f, unsigned int n)
{
	if (n < 2 || f->mem[0][100 * 4096 + 1] == 0xa5)
		return;
	pthread_mutex_lock(&f->lock);
	f->mem[0][100 * 4096 + 1] = 0xa5;
	fake_mark_written(f, 0, 100);
	pthread_mutex_unlock(&f->lock);
}

/*
 * Pages [0, 100) data, [100, 200) a hole, pass 1 by 64-page chunks: the
 * first chunk learns that the hole starts at 100, then the guest writes
 * page 100. The second chunk must not take the old answer for the new data
 * at 100 (it looped there, endlessly), and page 100 must reach the image.
 */
TEST_F(chunked, pass_one_copes_with_a_hole_filled_at_its_edge)
{
	struct fake_vm *f = &self->w.f;
	int fd = f->vm.regions[0].memfd;

	memset(f->mem[0], 0x5a, 100 * 4096);
	ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100 * 4096, 100 * 4096),
		  0);
	ASSERT_EQ(lseek(fd, 0, SEEK_HOLE), 100 * 4096);
	f->on_fetch = fill_page_100;
	ASSERT_EQ(snap_write(&self->w.img, &f->vm, &self->o, &self->rep, &self->err), 0);
	EXPECT_EQ(f->expect[0][100 * 4096 + 1], 0xa5);
	EXPECT_EQ(image_matches(f, self->w.path), 0);
}

/* Before the fake's own copy of its memory, which fills every hole. */
static void count_holes(struct fake_vm *f)
{
	holes_at_pause = hole_pages(f->vm.regions[0].memfd, fake_pages_of(0) * 4096);
}

/*
 * Pass 1 by chunks of 64 pages over a memfd of many holes and extents, none
 * aligned to a chunk: the engine remembers its lseek answers across chunks
 * (seek_memo()), and must still read every data page and skip every hole.
 * The mutator is quiet, so a page read as a hole by mistake would never be
 * handed over again, and a hole read as data would be filled by the read.
 */
TEST_F(chunked, pass_one_by_chunks_reads_every_extent_and_skips_every_hole)
{
	struct fake_vm *f = &self->w.f;
	uint64_t pages = fake_pages_of(0), holes, p;
	int fd = f->vm.regions[0].memfd;

	f->on_pause = count_holes;
	/* Holes of 37 pages every 100 pages, and the last 150 pages. */
	for (p = 30; p + 37 < pages - 150; p += 100)
		ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)p * 4096,
				    37 * 4096),
			  0);
	ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			    (off_t)(pages - 150) * 4096, 150 * 4096),
		  0);
	holes = hole_pages(fd, pages * 4096);
	TH_LOG("%llu of %llu pages are holes", (unsigned long long)holes,
	       (unsigned long long)pages);
	ASSERT_GT(holes, 150);
	ASSERT_EQ(snap_write(&self->w.img, &f->vm, &self->o, &self->rep, &self->err), 0);
	EXPECT_EQ(holes_at_pause, holes);
	EXPECT_EQ(image_matches(f, self->w.path), 0);
}

/*
 * A new file image reads as zeros, and its header says so: the first
 * snapshot leaves every hole's slot unwritten. A snapshot that failed
 * took that knowledge away, and the next one writes every hole.
 */
TEST(new_image_slots_keep_their_zeros_until_a_snapshot_fails)
{
	struct _fixture_writer fx, *self = &fx;
	struct snap_options o = {.max_downtime_ms = 5}, fail = {.threshold = 1, .max_passes = 10};
	struct snap_report rep;
	struct error err = {0};
	uint64_t holes, long_holes;

	memset(&fx, 0, sizeof(fx));
	setup_fake(self, true, _r);
	if (_r->failed)
		return;
	EXPECT_EQ(self->img.hdr.flags, SNAP_HDR_DATA_ZERO);
	quiet(&self->f);
	/*
	 * A hole of up to 64 pages after a run (writer.c, HOLE_COMBINE_PAGES)
	 * may go out as zeros inside the run's write; how many there are
	 * depends on how long the mutator ran before it was quieted.
	 */
	holes = hole_pages(self->f.vm.regions[0].memfd, fake_regions[0].size);
	long_holes = hole_pages_longer(self->f.vm.regions[0].memfd, fake_regions[0].size, 64);
	TH_LOG("%llu hole pages, %llu in holes longer than 64 pages", (unsigned long long)holes,
	       (unsigned long long)long_holes);
	ASSERT_GT(long_holes, 0);
	EXPECT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_GE(rep.zero_pages_kept, long_holes);
	EXPECT_LE(rep.zero_pages_kept, holes);
	EXPECT_EQ(self->img.hdr.flags, 0);
	EXPECT_EQ(image_matches(&self->f, self->path), 0);

	/* Again into a new image, whose first snapshot fails halfway. */
	snap_image_close(&self->img);
	{
		struct snap_target_opts topts = {.direct = true, .force = true};

		ASSERT_EQ(snap_image_create(self->path, &self->f.vm.cfg, &topts, &self->img, &err),
			  0);
	}
	self->f.quiet = false;
	self->f.break_fd_at = (int)self->f.fetches + 2;
	EXPECT_LT(snap_write(&self->img, &self->f.vm, &fail, &rep, &err), 0);
	snap_image_close(&self->img);
	quiet(&self->f);
	self->f.break_fd_at = 0;
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &self->img, &err), 0);
	EXPECT_EQ(self->img.hdr.state, SNAP_STATE_WRITING);
	EXPECT_EQ(self->img.hdr.flags, 0);
	EXPECT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	EXPECT_EQ(rep.zero_pages_kept, 0);
	EXPECT_EQ(image_matches(&self->f, self->path), 0);
	EXPECT_EQ(teardown_fake(self), 0);
}

/* ---- the engine with another sink: plain memory, as materializing does ---- */

struct mem_sink {
	struct fake_vm *f;
	uint8_t *copy[FAKE_NR_REGIONS];
	unsigned int paused_calls, paused_while_running;
	unsigned int first_pass_calls;
	bool fail_paused;
};

static int msink_write(void *ctx, unsigned int r, uint64_t first, uint64_t n, const uint8_t *src,
		       struct error *err)
{
	struct mem_sink *m = ctx;

	(void)err;
	memcpy(m->copy[r] + first * 4096, src, n * 4096);
	return 0;
}

static int msink_paused(void *ctx, struct error *err)
{
	struct mem_sink *m = ctx;

	m->paused_calls++;
	if (!m->f->paused)
		m->paused_while_running++;
	return m->fail_paused ? err_set(err, -EIO, "injected failure while paused") : 0;
}

static const struct snap_sink_ops msink_ops = {.write = msink_write, .paused = msink_paused};

static void msink_init(struct mem_sink *m, struct fake_vm *f)
{
	unsigned int r;

	memset(m, 0, sizeof(*m));
	m->f = f;
	for (r = 0; r < FAKE_NR_REGIONS; r++)
		m->copy[r] = calloc(1, fake_regions[r].size);
}

static unsigned int msink_mismatches(struct mem_sink *m)
{
	unsigned int r, bad = 0;

	for (r = 0; r < FAKE_NR_REGIONS; r++) {
		bad += memcmp(m->copy[r], m->f->expect[r], fake_regions[r].size) != 0;
		free(m->copy[r]);
	}
	return bad;
}

TEST_F(writer, engine_copies_a_live_vm_into_memory)
{
	struct snap_options lim = {.threshold = 64 << 10, .max_passes = 20};
	struct snap_precopy_opts po = {.limits = &lim};
	struct snap_report rep = {0};
	struct error err = {0};
	struct mem_sink m;
	struct snap_sink sink = {.ops = &msink_ops};

	msink_init(&m, &self->f);
	sink.ctx = &m;
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &sink, &po, &rep, &err), 0);
	TH_LOG("%u passes, %s", rep.nr_passes, rep.stop_reason);
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	EXPECT_EQ(m.paused_calls, 1);
	EXPECT_EQ(m.paused_while_running, 0);
	EXPECT_GE(rep.nr_passes, 2); /* pass 1 and the final batch at least */
	EXPECT_GE(rep.bytes_written, 8ULL << 20);
	EXPECT_EQ(msink_mismatches(&m), 0);
}

/* Without dirty logging (no log_start), everything is copied while paused. */
TEST_F(writer, engine_without_logging_copies_paused)
{
	struct snap_vm_ops ops = fake_vm_ops;
	struct snap_options lim = {0};
	struct snap_precopy_opts po = {.limits = &lim};
	struct snap_report rep = {0};
	struct error err = {0};
	struct mem_sink m;
	struct snap_sink sink = {.ops = &msink_ops};

	ops.log_start = NULL;
	self->f.vm.ops = &ops;
	msink_init(&m, &self->f);
	sink.ctx = &m;
	ASSERT_EQ(snap_precopy_run(&self->f.vm, &sink, &po, &rep, &err), 0);
	EXPECT_EQ(rep.nr_passes, 1);
	EXPECT_STREQ(rep.stop_reason, "copied while paused");
	EXPECT_EQ(self->f.fetches, 0);
	EXPECT_TRUE(self->f.finished);
	EXPECT_EQ(msink_mismatches(&m), 0);
}

/* A failure in the paused hook resumes the VM all the same, and is reported. */
TEST_F(writer, engine_failure_while_paused_resumes)
{
	struct snap_options lim = {.threshold = 64 << 10};
	struct snap_precopy_opts po = {.limits = &lim};
	struct snap_report rep = {0};
	struct error err = {0};
	struct mem_sink m;
	struct snap_sink sink = {.ops = &msink_ops};

	msink_init(&m, &self->f);
	m.fail_paused = true;
	sink.ctx = &m;
	EXPECT_EQ(snap_precopy_run(&self->f.vm, &sink, &po, &rep, &err), -EIO);
	EXPECT_STREQ(err.msg, "injected failure while paused");
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	msink_mismatches(&m);
}

/* ---- incremental snapshots into a two-slot image ---- */

/* Replace the fixture's image with a two-slot one. */
static void two_slots(struct _fixture_writer *self, struct th_result *_r)
{
	struct snap_target_opts topts = {.direct = true, .nr_slots = 2, .force = true};
	struct error err = {0};

	snap_image_close(&self->img);
	ASSERT_EQ(unlink(self->path), 0);
	ASSERT_EQ(snap_image_create(self->path, &self->f.vm.cfg, &topts, &self->img, &err), 0);
}

/*
 * One snapshot into the next slot, as the manager takes it: the tracker
 * commits on success, and on failure gets back every page it handed over.
 */
static int take(struct fake_vm *f, bool incremental, struct snap_report *rep, struct error *err)
{
	/* With hash workers and merged runs: incremental digests merge their hashes. */
	const struct snap_options o = {.max_downtime_ms = 5, .hash_threads = 2, .merge_gap = 8};
	struct snap_image *img = f->img;
	unsigned int slot = snap_image_next_slot(img), r, i;
	int ret = snap_image_select_slot(img, slot, true, err);

	if (ret)
		return ret;
	f->base = img->slots[slot].ok && img->hdr.state != SNAP_STATE_EMPTY ? img->hdr.write_id : 0;
	f->want_incremental = incremental;
	for (r = 0; r < FAKE_NR_REGIONS; r++)
		memset(f->pending[r], 0, fake_bitmap_bytes(r));
	ret = snap_write(img, &f->vm, &o, rep, err);
	pthread_mutex_lock(&f->lock);
	if (!ret) {
		f->track_valid[slot] = true;
		f->track_id[slot] = img->hdr.write_id;
	} else {
		for (r = 0; r < FAKE_NR_REGIONS; r++)
			for (i = 0; i < fake_bitmap_bytes(r) / 8; i++)
				f->track[slot][r][i] |= f->pending[r][i];
		/* A failed incremental attempt may have rewritten the header. */
		if (f->track_id[slot] == f->base)
			f->track_id[slot] = img->hdr.write_id;
	}
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/* The slot the last snapshot wrote holds the memory at its pause, and verifies deep. */
static int slot_matches(struct _fixture_writer *self, unsigned int slot)
{
	struct snap_image img = {.fd = -1};
	struct snap_verify_result vr;
	struct error err = {0};
	unsigned int r;
	int bad = 0;

	snap_image_close(&self->img);
	if (snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err) ||
	    snap_image_select_slot(&img, slot, false, &err) ||
	    snap_image_verify(&img, true, &vr, &err)) {
		fprintf(stderr, "# slot %u: %s\n", slot, err.msg);
		bad = -1;
	}
	for (r = 0; !bad && r < FAKE_NR_REGIONS; r++) {
		const struct snap_section *s = snap_layout_section(&img.layout, r);
		uint8_t *buf = malloc(fake_regions[r].size);

		if (pread(img.fd, buf, fake_regions[r].size, (off_t)s->data_off) !=
			(ssize_t)fake_regions[r].size ||
		    memcmp(buf, self->f.expect[r], fake_regions[r].size))
			bad++;
		free(buf);
	}
	snap_image_close(&img);
	if (snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &self->img, &err))
		bad = -1;
	return bad;
}

TEST_F(writer, incremental_series_in_two_slots_is_the_memory_at_each_pause)
{
	struct snap_report rep;
	struct error err = {0};
	unsigned int i, incremental = 0;

	two_slots(self, _r);
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
		TH_LOG("snapshot %u: slot %u, generation %llu, %s, pass 1 %llu pages", i, rep.slot,
		       (unsigned long long)rep.generation, rep.incremental ? "incremental" : "full",
		       (unsigned long long)rep.passes[0].dirty_pages);
		EXPECT_EQ(rep.slot, i % 2);
		EXPECT_EQ(rep.generation, i + 1);
		/* The first snapshot into each slot has nothing to count from. */
		EXPECT_EQ(rep.incremental, i >= 2);
		incremental += rep.incremental;
		ASSERT_EQ(slot_matches(self, rep.slot), 0);
	}
	EXPECT_EQ(incremental, 4);
}

TEST_F(writer, incremental_writes_only_the_changed_pages)
{
	struct snap_report rep;
	struct error err = {0};
	unsigned int i;

	/* A guest at rest but for 5 pages: slot 0's next snapshot is those 5 pages. */
	self->f.quiet = 1;
	usleep(20000);
	two_slots(self, _r);
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	pthread_mutex_lock(&self->f.lock);
	for (i = 0; i < 5; i++) {
		self->f.mem[0][(100 + 37 * i) * 4096] ^= 0x5a;
		fake_mark_written(&self->f, 0, 100 + 37 * i);
	}
	pthread_mutex_unlock(&self->f.lock);
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	EXPECT_EQ(rep.slot, 0);
	EXPECT_TRUE(rep.incremental);
	EXPECT_EQ(rep.passes[0].dirty_pages, 5);
	EXPECT_EQ(rep.bytes_written, 5 * 4096);
	ASSERT_EQ(slot_matches(self, 0), 0);
	/* Slot 1 gets the same 5 pages; then slot 0 again has nothing to write. */
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	EXPECT_EQ(rep.slot, 1);
	EXPECT_EQ(rep.passes[0].dirty_pages, 5);
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	EXPECT_EQ(rep.slot, 0);
	EXPECT_TRUE(rep.incremental);
	EXPECT_EQ(rep.passes[0].dirty_pages, 0);
	ASSERT_EQ(slot_matches(self, 0), 0);
}

TEST_F(writer, incremental_after_failures_loses_no_page)
{
	struct snap_report rep;
	struct error err = {0};
	unsigned int i, failed = 0;

	two_slots(self, _r);
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	/* Every other snapshot fails partway, in either slot; the next one must still be exact. */
	for (i = 0; i < 6; i++) {
		self->f.fetches = 0;
		self->f.fail_fetch_at = i % 2 ? 0 : 2;
		if (take(&self->f, true, &rep, &err)) {
			failed++;
			EXPECT_FALSE(self->f.paused);
			continue;
		}
		EXPECT_TRUE(rep.incremental);
		ASSERT_EQ(slot_matches(self, rep.slot), 0);
	}
	EXPECT_EQ(failed, 3);
}

TEST_F(writer, a_tracker_that_counts_from_elsewhere_gets_a_full_snapshot)
{
	struct snap_report rep;
	struct error err = {0};

	two_slots(self, _r);
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	/* Someone else wrote slot 0 meanwhile: its write id is not the tracker's. */
	self->f.track_id[0] ^= 1;
	ASSERT_EQ(take(&self->f, true, &rep, &err), 0);
	EXPECT_EQ(rep.slot, 0);
	EXPECT_FALSE(rep.incremental);
	ASSERT_EQ(slot_matches(self, 0), 0);
}

TEST_HARNESS_MAIN
